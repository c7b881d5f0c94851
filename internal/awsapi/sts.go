package awsapi

import (
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
)

// sts serves the STS calls tutorials make: GetCallerIdentity.
func (s *Server) sts(w http.ResponseWriter, req *request) {
	form, err := url.ParseQuery(string(req.body))
	if err != nil {
		queryProtocol{}.writeError(w, errBadRequest("the request body is not a form: "+err.Error()))
		return
	}
	for k, v := range req.r.URL.Query() {
		form[k] = append(form[k], v...)
	}
	switch action := form.Get("Action"); action {
	case "GetCallerIdentity":
		type result struct {
			Arn     string `xml:"Arn"`
			UserID  string `xml:"UserId"`
			Account string `xml:"Account"`
		}
		body := struct {
			XMLName  xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
			Result   result   `xml:"GetCallerIdentityResult"`
			Metadata struct {
				RequestID string `xml:"RequestId"`
			} `xml:"ResponseMetadata"`
		}{Result: result{
			Arn:     fmt.Sprintf("arn:aws:iam::%s:user/%s", s.cfg.AccountID, req.keyID),
			UserID:  req.keyID,
			Account: s.cfg.AccountID,
		}}
		body.Metadata.RequestID = newRequestID()
		w.Header().Set("Content-Type", "text/xml")
		_ = xml.NewEncoder(w).Encode(body)
	default:
		queryProtocol{}.writeError(w, &awsError{Status: http.StatusBadRequest, Code: "InvalidAction",
			Message: fmt.Sprintf("sts %s is not served by this Gatehouse; it serves GetCallerIdentity", action)})
	}
}

// newRequestID is a request id in the UUID form AWS's are.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
