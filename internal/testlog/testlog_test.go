package testlog

import (
	"log/slog"
	"testing"
)

// A logger outlives its test in practice (a node still stopping): writing
// to it afterwards must not reach the finished test, where t.Log panics.
func TestNew_DropsLinesAfterTheTestEnds(t *testing.T) {
	var logger *slog.Logger
	t.Run("inner", func(t *testing.T) {
		logger = New(t)
		logger.Warn("while the test runs")
		logger.Info("below the level")
	})
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("logging after the test ended panicked: %v", v)
		}
	}()
	logger.Error("after the test ended")
}
