package jobs

import "sync/atomic"

var deviceFlag atomic.Value // string

// SetDevice records the device the run's stages compute on ("cpu" or
// "cuda": rljob run --device, after trainer.UseDevice selected it). Each
// stage call record and checkpoint manifest names it ("device").
func SetDevice(name string) { deviceFlag.Store(name) }

// Device is the device SetDevice recorded, "cpu" when none was.
func Device() string {
	if s, ok := deviceFlag.Load().(string); ok && s != "" {
		return s
	}
	return "cpu"
}
