package loadtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

// fanout learns the connection ids, then posts FanoutRounds messages to every connection through
// @connections, timing each round until every connection received it.
func (r *wsRunner) fanout(ctx context.Context) {
	cfg := &r.cfg
	r.setPhase("ids")
	if cfg.IDMessage != "" {
		r.idsByMessage(ctx)
	} else if err := r.idsFromAdmin(ctx); err != nil {
		r.fail("ids", err.Error())
	}
	var targets []*wsConn
	for _, wc := range r.conns {
		if wc.id != "" {
			targets = append(targets, wc)
		}
	}
	r.mu.Lock()
	r.res.IDs = int64(len(targets))
	r.phase = "fan-out"
	r.mu.Unlock()
	if len(targets) == 0 {
		return
	}

	client := &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: cfg.Timeout, Control: loopbackOnly}).DialContext,
			MaxIdleConns:        cfg.PostParallel,
			MaxIdleConnsPerHost: cfg.PostParallel,
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // loopback only
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	base := *r.target
	base.Scheme = map[string]string{"ws": "http", "wss": "https"}[base.Scheme]
	base.Path = strings.TrimSuffix(base.Path, "/") + connectionsPathSegment
	base.RawPath, base.RawQuery, base.Fragment = "", "", ""
	creds := aws.Credentials{AccessKeyID: cfg.AccessKey, SecretAccessKey: cfg.SecretKey}
	signer := v4.NewSigner()

	for n := int64(1); n <= int64(cfg.FanoutRounds) && ctx.Err() == nil; n++ {
		body := fill(cfg.FanoutMessage, r.prefix+"f"+strconv.FormatInt(n, 10), time.Now())
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		rd := &fanoutRound{n: n, done: make(chan struct{})}
		rd.remaining.Store(int64(len(targets)))
		rd.start = time.Now()
		r.round.Store(rd)
		jobs := make(chan *wsConn)
		var wg sync.WaitGroup
		for range min(cfg.PostParallel, len(targets)) {
			wg.Go(func() {
				for wc := range jobs {
					status, kind := r.post(ctx, client, signer, creds, base.String()+wc.id, body, hash)
					r.mu.Lock()
					if status != 0 {
						r.res.FanoutPosts[status]++
					}
					if status == http.StatusOK {
						r.res.FanoutExpected++
					} else if kind != "" {
						r.res.Errors["post: "+kind]++
					} else {
						r.res.Errors["post: status "+strconv.Itoa(status)]++
					}
					r.mu.Unlock()
					if status != http.StatusOK && rd.remaining.Add(-1) == 0 {
						close(rd.done) // the last expected delivery will not come
					}
				}
			})
		}
		for _, wc := range targets {
			jobs <- wc
		}
		close(jobs)
		wg.Wait()
		timer := time.NewTimer(cfg.ReplyTimeout)
		select {
		case <-rd.done:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		r.round.Store(nil)
		r.mu.Lock()
		r.res.FanoutRounds++
		if rd.remaining.Load() <= 0 && rd.last.Load() > 0 {
			r.res.FanoutComplete.Record(time.Duration(rd.last.Load()))
		}
		r.mu.Unlock()
	}
}

// post sends one signed @connections post, and returns its status, or 0 and the kind of error.
func (r *wsRunner) post(ctx context.Context, client *http.Client, signer *v4.Signer, creds aws.Credentials, u string, body []byte, hash string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, "other"
	}
	if err := signer.SignHTTP(ctx, creds, req, hash, "execute-api", r.cfg.Region, time.Now()); err != nil {
		return 0, "signing"
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, errorKind(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, ""
}

// idsByMessage sends IDMessage on every connection and takes the connection id from the first frame
// that carries one.
func (r *wsRunner) idsByMessage(ctx context.Context) {
	slots := make(chan struct{}, r.cfg.ConnectParallel)
	var wg sync.WaitGroup
	for _, wc := range r.conns {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-slots }()
			ch := make(chan string, 1)
			wc.mu.Lock()
			wc.idWait = ch
			wc.mu.Unlock()
			defer func() {
				wc.mu.Lock()
				wc.idWait = nil
				wc.mu.Unlock()
			}()
			if err := r.write(wc, []byte(r.cfg.IDMessage)); err != nil {
				r.fail("ids", errorKind(err))
				return
			}
			timer := time.NewTimer(r.cfg.ReplyTimeout)
			defer timer.Stop()
			select {
			case id := <-ch:
				wc.id = id
			case <-timer.C:
				r.fail("ids", "no connectionId in a reply")
			case <-ctx.Done():
			}
		})
	}
	wg.Wait()
}

// idsFromAdmin lists the node's connections through the admin API and matches them to ours by the
// user agent each connection sent. A connection may be listed only a moment after its handshake
// answered, so the listing is read again, for up to ReplyTimeout, until it names them all.
func (r *wsRunner) idsFromAdmin(ctx context.Context) error {
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		Proxy: nil, DialContext: (&net.Dialer{Timeout: r.cfg.Timeout, Control: loopbackOnly}).DialContext,
	}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(r.cfg.ReplyTimeout)
	for {
		missing, err := r.listIDs(ctx, client)
		if err != nil {
			return err
		}
		if missing == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			for range missing {
				r.fail("ids", "not in the admin listing")
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listIDs reads the admin API's connection listing once, and returns how many of our connections
// still have no id.
func (r *wsRunner) listIDs(ctx context.Context, client *http.Client) (int, error) {
	admin := adminapi.New(r.cfg.IDAdmin, r.cfg.IDAdminToken)
	admin.HTTP = client
	list, _, err := admin.Connections(ctx, "")
	if status := adminapi.StatusOf(err); status != 0 {
		return 0, fmt.Errorf("listing connections: status %d", status)
	} else if err != nil {
		return 0, fmt.Errorf("listing connections: %s", errorKind(err))
	}
	mine := userAgentPrefix + r.runID + "/"
	for _, c := range list.Connections {
		s, ok := strings.CutPrefix(c.UserAgent, mine)
		if !ok {
			continue
		}
		i, err := strconv.Atoi(s)
		if err != nil {
			continue
		}
		if wc, ok := r.connIndex[i]; ok {
			wc.id = c.ID
		}
	}
	missing := 0
	for _, wc := range r.conns {
		if wc.id == "" {
			missing++
		}
	}
	return missing, nil
}
