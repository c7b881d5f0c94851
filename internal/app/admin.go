package app

import (
	"github.com/gofiber/fiber/v2"
)

// adminServer is the admin listener (loopback by default). For now it answers /healthz.
type adminServer struct {
	app *fiber.App
}

func newAdminServer(n *Node) *adminServer {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/healthz", func(c *fiber.Ctx) error {
		ready := n.readyWorkers()
		status := fiber.StatusOK
		state := "ok"
		if ready == 0 {
			status, state = fiber.StatusServiceUnavailable, "no workers"
		}
		return c.Status(status).JSON(fiber.Map{"status": state, "stack": n.stack.Name, "workers": ready})
	})
	return &adminServer{app: app}
}
