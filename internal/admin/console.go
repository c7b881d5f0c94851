package admin

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// consoleHTML is the web console: one page, its script and styles inline, nothing fetched from
// elsewhere. It holds no data; it reads the admin API with the token the user signs in with.
//
//go:embed console.html
var consoleHTML string

// serveConsole answers the console's page, without a token (the page asks for one).
func serveConsole(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	return c.SendString(consoleHTML)
}
