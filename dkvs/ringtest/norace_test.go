//go:build !race

package ringtest_test

const raceDetector = false
