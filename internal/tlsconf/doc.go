// Package tlsconf owns Gatehouse's TLS settings (layer −1: standard library and fsnotify only). It
// provides four pieces that the listeners share:
//
//   - [Policy]: the security policies a custom domain may name, TLS_1_2 (the default) and TLS_1_3,
//     applied to a [tls.Config].
//   - [Store]: server certificates read from PEM files and chosen by the client's server name (SNI):
//     an exact name first, then a wildcard, then the default certificate. [Store.Watch] reloads a
//     certificate when its files change, without a restart; [Store.GetCertificate] reads an
//     immutable snapshot and takes no lock.
//   - [LocalCA]: a certificate authority made once under the data directory, for HTTPS on a machine
//     with no certificate: it issues leaf certificates for localhost, 127.0.0.1 and local domain
//     names, and [LocalCA.TrustInstructions] says how to make browsers and tools trust it.
//   - [TrustStore]: mutual TLS. Client certificates are checked against a domain's trust store
//     (chain, validity, client-auth usage, revoked serial numbers) during the handshake, so a client
//     whose certificate fails sees a TLS alert, never an HTTP response; [ClientCertInfo] gives the
//     certificate's fields as API Gateway puts them in requestContext.authentication.clientCert.
//
// A listener puts them together like this:
//
//	store := tlsconf.NewStore(logger)
//	if err := store.Add([]string{"api.example.com"}, "api.pem", "api-key.pem"); err != nil { … }
//	go store.Watch(ctx)
//	cfg := &tls.Config{GetCertificate: store.GetCertificate}
//	if err := tlsconf.PolicyTLS12.Apply(cfg); err != nil { … }
//	if trust != nil { // the domain requires mutual TLS
//		cfg = trust.Config(cfg)
//	}
//
// # API Gateway's clientCert fields
//
// API Gateway's documentation shows clientCert with placeholder values only ("a1:a1:…" as the
// serial number, "www.example.com" as the subject). The shape used here follows an event recorded
// from a real mutual TLS custom domain, whose client certificate was made with OpenSSL with serial
// number 01 and subject /C=US/ST=Washington/L=Seattle/O=Amazon Web Services/OU=Security/CN=My Client:
//
//	"serialNumber": "1",
//	"subjectDN": "C=US,ST=Washington,L=Seattle,O=Amazon Web Services,OU=Security,CN=My Client",
//	"validity": {"notAfter": "Aug  5 00:28:21 2120 GMT", "notBefore": "Aug 29 00:28:21 2020 GMT"}
//
// So the distinguished names list their attributes in the order the certificate holds them (not
// reversed as RFC 2253 would), joined by commas with no spaces, with RFC 4514 escaping of the values;
// the serial number is written in decimal (a serial of 01 shows as "1", not "01" or "1:"), and the
// validity dates in OpenSSL's text form, the day padded with a space.
package tlsconf
