// Package acme owns the node's public certificates: certificates for its custom domains from an ACME
// certificate authority (Let's Encrypt by default), kept under the data directory, renewed before
// they expire, and served through the same TLS listener as the other certificates (layer −1: the
// standard library, CertMagic and the zap logger CertMagic takes; nothing of Gatehouse).
//
// A [Manager] obtains a certificate for each name given to [Manager.Manage], stores it with its
// private key and the ACME account under [Config.Dir], and keeps renewing it in the background
// until [Manager.Close]. A certificate already in storage is loaded, not obtained again, so a
// restart does not contact the CA for names that already have a valid certificate.
//
// The CA checks that the node controls a name with one of two challenges, both answered by the
// node's own listeners:
//
//   - HTTP-01: the CA fetches http://NAME/.well-known/acme-challenge/TOKEN on port 80. The plain
//     HTTP listener answers it through [Manager.HTTPChallengeHandler].
//   - TLS-ALPN-01: the CA opens a TLS connection to NAME on port 443 offering only the ALPN
//     protocol [TLSALPNProtocol]. The TLS listener answers it through [Manager.GetCertificate],
//     provided its NextProtos include [TLSALPNProtocol].
//
// When nothing of the node listens on a challenge's port (HTTP-01 on [Config.HTTPPort],
// TLS-ALPN-01 on [Config.TLSALPNPort]), CertMagic listens there itself, on every interface, for the
// length of the challenge; a node that must not bind a port disables that challenge instead.
// Wildcard names need the DNS-01 challenge, which this package does not solve, so they are refused,
// as are IP addresses and names that are not public (localhost, *.local, *.internal…): the local CA
// of internal/tlsconf serves those.
//
// A listener puts the pieces together like this (store is the tlsconf.Store of certificates from
// files and the local CA):
//
//	m, err := acme.New(acme.Config{Dir: filepath.Join(dataDir, "acme"), Email: email, Logger: logger})
//	if err != nil { … }
//	defer m.Close()
//	if err := m.Manage(ctx, []string{"api.example.com"}); err != nil { … }
//	tlsCfg := &tls.Config{
//		NextProtos: []string{"http/1.1", acme.TLSALPNProtocol},
//		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
//			cert, err := m.GetCertificate(hello)
//			if errors.Is(err, acme.ErrNotManaged) {
//				return store.GetCertificate(hello)
//			}
//			return cert, err
//		},
//	}
//	plain := &http.Server{Handler: m.HTTPChallengeHandler(redirectOrServe)}
//
// # Storage
//
// Everything lives under [Config.Dir] in CertMagic's own file layout ([certmagic.FileStorage]):
// certificates and their keys under certificates/CA/NAME/, the ACME account under acme/CA/users/,
// challenge tokens while a challenge is in progress, and lock files under locks/ that keep two
// processes sharing the directory from obtaining the same certificate twice. Directories are made
// 0700 and key files 0600.
//
// # CertMagic's process-wide state
//
// CertMagic keeps some package-level defaults and registries. A Manager depends on none of the
// defaults: it builds its own [certmagic.Cache] and [certmagic.Config] with [certmagic.New] (never
// [certmagic.NewDefault] or [certmagic.Default]) and its own [certmagic.ACMEIssuer] with every
// setting it uses filled in, so that the package defaults ([certmagic.Default],
// [certmagic.DefaultACME], [certmagic.HTTPPort], [certmagic.HTTPSPort]) only ever fill settings that
// Gatehouse leaves at their zero value; Gatehouse must never assign to those variables. What stays
// shared by every Manager of a process, by CertMagic's design:
//
//   - the challenges in progress, which any Manager's HTTPChallengeHandler or GetCertificate can
//     answer (harmless: a challenge is answered only for the name and token it was made for);
//   - the throttle of requests to each CA, per account;
//   - the storage lock registry, and the job queue that runs background renewals;
//   - the account e-mail address last used: a Manager with no [Config.Email] may register its
//     account with the address another Manager of the same process used. A node runs one Manager.
//
// Obtaining is always non-interactive: CertMagic's interactive path would prompt on standard input
// for an e-mail address and the CA's terms, which a server must never do. Enabling ACME accepts the
// CA's subscriber agreement on the operator's behalf, as Caddy does.
//
// CertMagic logs through zap; a Manager hands it a zap logger that writes to [Config.Logger]. A few
// of CertMagic's messages about its own challenge listeners go to the standard library's log
// package instead.
package acme
