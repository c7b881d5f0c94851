package tlsconf

import (
	"fmt"
	"strings"
)

// TrustInstructions returns text, for a terminal, that says how to make the system, browsers and
// common tools trust the local CA: Linux (update-ca-certificates on Debian and Ubuntu, trust anchor
// on Fedora, RHEL and Arch), macOS (security add-trusted-cert), Windows (certutil), Firefox and
// Chromium on Linux (their NSS databases), and single commands (curl --cacert, NODE_EXTRA_CA_CERTS,
// SSL_CERT_FILE). The commands name the CA's certificate by its path, quoted for the shell.
func (ca *LocalCA) TrustInstructions() string {
	p := ca.CertPath()
	sh, win := shellQuote(p), windowsQuote(p)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("Gatehouse made a local certificate authority, %q, whose certificate is", CACommonName)
	w("  %s", p)
	w("Browsers and tools accept the HTTPS certificates it issues once they trust it. Its private key")
	w("(%s, beside it) stays on this machine: keep it private.", CAKeyFile)
	w("")
	w("Linux, Debian and Ubuntu:")
	w("  sudo cp %s /usr/local/share/ca-certificates/gatehouse-local-ca.crt", sh)
	w("  sudo update-ca-certificates")
	w("Linux, Fedora, RHEL and Arch:")
	w("  sudo trust anchor --store %s", sh)
	w("macOS:")
	w("  sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain %s", sh)
	w("Windows (for the current user; from an administrator prompt, drop -user to trust it machine-wide):")
	w("  certutil -user -addstore Root %s", win)
	w("Firefox keeps its own trust store: Settings > Privacy & Security > Certificates > View")
	w("Certificates > Authorities > Import, choose the file and tick \"Trust this CA to identify")
	w("websites\"; or, with NSS's certutil (libnss3-tools, nss-tools), for each profile:")
	w("  certutil -A -d sql:$HOME/.mozilla/firefox/PROFILE -t C,, -n %s -i %s", shellQuote(CACommonName), sh)
	w("Chromium and Chrome on Linux use the NSS database of your user:")
	w("  certutil -A -d sql:$HOME/.pki/nssdb -t C,, -n %s -i %s", shellQuote(CACommonName), sh)
	w("")
	w("Or trust it for one program only:")
	w("  curl --cacert %s https://localhost:PORT/", sh)
	w("  NODE_EXTRA_CA_CERTS=%s node app.js", sh)
	w("  SSL_CERT_FILE=%s CMD    (Go, OpenSSL, Python; replaces the system's list for CMD)", sh)
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain path characters.
func shellQuote(s string) string {
	plain := s != ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("/._-+:@%=,", c) >= 0) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// windowsQuote quotes s for cmd.exe and PowerShell when it holds a space.
func windowsQuote(s string) string {
	if strings.ContainsAny(s, " \t&()^") {
		return `"` + s + `"`
	}
	return s
}
