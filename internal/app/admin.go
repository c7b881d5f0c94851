package app

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminServer is the admin listener (loopback by default): /healthz and Prometheus /metrics.
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
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(n.metrics, promhttp.HandlerOpts{})))
	return &adminServer{app: app}
}
