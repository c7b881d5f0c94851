package tlsconf

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ValidityLayout is the time layout of clientCert's validity dates, OpenSSL's text form in UTC with
// the day padded by a space: "May 28 12:30:02 2019 GMT", "Aug  5 09:36:04 2021 GMT".
const ValidityLayout = "Jan _2 15:04:05 2006 GMT"

// ClientCertInfo returns a client certificate's fields as API Gateway gives them to a function
// and to an authorizer in requestContext.authentication.clientCert:
//
//	clientCertPem  the certificate in PEM, with its final newline
//	subjectDN      the subject, its attributes in the certificate's order: "C=US,O=Example,CN=client"
//	issuerDN       the issuer, in the same form
//	serialNumber   the serial number in decimal: "1", "13419443851370233106"
//	validity       {"notBefore": …, "notAfter": …} in [ValidityLayout]
//
// A distinguished name is written with the attribute names CN, C, L, ST, STREET, O, OU,
// SERIALNUMBER, DC, UID and E (emailAddress), other attributes by their dotted OID; values are
// escaped as RFC 4514 says (a comma as "\,"), and a value that is not a string is written as "#"
// and the hexadecimal of its DER encoding. See the package documentation for where this form comes
// from. It returns nil for a nil certificate.
func ClientCertInfo(cert *x509.Certificate) map[string]any {
	if cert == nil {
		return nil
	}
	return map[string]any{
		"clientCertPem": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		"subjectDN":     formatDN(cert.RawSubject),
		"issuerDN":      formatDN(cert.RawIssuer),
		"serialNumber":  cert.SerialNumber.String(),
		"validity": map[string]any{
			"notBefore": cert.NotBefore.UTC().Format(ValidityLayout),
			"notAfter":  cert.NotAfter.UTC().Format(ValidityLayout),
		},
	}
}

// attribute is one AttributeTypeAndValue of a distinguished name, its value kept raw so that its
// string type is known.
type attribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rdnSET is a relative distinguished name (encoding/asn1 takes a type name ending in SET as a SET
// OF), and rdnSequence a distinguished name.
type (
	rdnSET      []attribute
	rdnSequence []rdnSET
)

// attributeNames are the short names of the usual attribute types.
var attributeNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "STREET",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.5":                    "SERIALNUMBER",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
	"1.2.840.113549.1.9.1":       "E",
}

// formatDN writes a DER distinguished name as clientCert shows it: its relative distinguished names
// in encoded order, joined by ","; the attributes of a multi-valued one joined by "+". A name that
// does not parse is written as "#" and its hexadecimal.
func formatDN(der []byte) string {
	var seq rdnSequence
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) != 0 {
		return "#" + hex.EncodeToString(der)
	}
	var b strings.Builder
	for i, rdn := range seq {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, a := range rdn {
			if j > 0 {
				b.WriteByte('+')
			}
			oid := a.Type.String()
			if name, ok := attributeNames[oid]; ok {
				b.WriteString(name)
			} else {
				b.WriteString(oid)
			}
			b.WriteByte('=')
			if s, ok := attributeString(a.Value); ok {
				b.WriteString(escapeDNValue(s))
			} else {
				b.WriteByte('#')
				b.WriteString(hex.EncodeToString(a.Value.FullBytes))
			}
		}
	}
	return b.String()
}

// attributeString decodes a directory string value: UTF8String, PrintableString, IA5String,
// NumericString, VisibleString, TeletexString (read as Latin-1), BMPString (UTF-16) or
// UniversalString (UTF-32). It reports false for any other type, or for text that does not decode.
func attributeString(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String:
		return string(v.Bytes), utf8.Valid(v.Bytes)
	case asn1.TagPrintableString, asn1.TagIA5String, asn1.TagNumericString, 26: // 26: VisibleString
		for _, c := range v.Bytes {
			if c >= utf8.RuneSelf {
				return "", false
			}
		}
		return string(v.Bytes), true
	case asn1.TagT61String:
		r := make([]rune, len(v.Bytes))
		for i, c := range v.Bytes {
			r[i] = rune(c)
		}
		return string(r), true
	case asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
		}
		return string(utf16.Decode(u)), true
	case 28: // UniversalString
		if len(v.Bytes)%4 != 0 {
			return "", false
		}
		r := make([]rune, len(v.Bytes)/4)
		for i := range r {
			b := v.Bytes[4*i:]
			r[i] = rune(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
			if !utf8.ValidRune(r[i]) {
				return "", false
			}
		}
		return string(r), true
	}
	return "", false
}

// escapeDNValue escapes an attribute value as RFC 4514 section 2.4 says: a backslash before
// '"', '+', ',', ';', '<', '>' and '\\', before a leading space or '#' and a trailing space, and
// NUL as "\00".
func escapeDNValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0:
			b.WriteString(`\00`)
			continue
		case strings.IndexByte(`"+,;<>\`, c) >= 0,
			i == 0 && (c == ' ' || c == '#'),
			i == len(s)-1 && c == ' ':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// FormatDN writes a raw distinguished name (a certificate's RawSubject or RawIssuer) as
// ClientCertInfo's subjectDN and issuerDN are written.
func FormatDN(raw []byte) string { return formatDN(raw) }
