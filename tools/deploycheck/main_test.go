package deploycheck

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildTmpDir != "" {
		_ = os.RemoveAll(buildTmpDir)
	}
	os.Exit(code)
}
