// Command pause is the sandbox ("pause") process of the local node's pods: it holds the pod's
// namespaces and does nothing else. Built here because the node pulls no image from a registry.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Exit at once on SIGTERM/SIGINT, so deleting a pod never waits for its grace period.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
