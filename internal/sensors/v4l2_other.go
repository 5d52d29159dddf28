//go:build !linux

package sensors

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

func newV4L2Camera(name, path, format string, width, height int, fps float64, timeout time.Duration, log *zap.Logger) (FrameSource, error) {
	return nil, fmt.Errorf("camera %s: V4L2 capture needs Linux; use a command, images or synthetic source", path)
}
