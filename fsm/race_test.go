//go:build race

package fsm

// raceDetector: the tests run with -race, which changes how the runtime
// allocates (see TestMessageOverhead_Measured).
const raceDetector = true
