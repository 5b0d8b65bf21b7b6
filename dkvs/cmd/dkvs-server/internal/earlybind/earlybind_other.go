//go:build !linux

package earlybind

import "errors"

var errUnsupported = errors.New("earlybind: only on Linux")

func readArgs() ([]string, error)                 { return nil, errUnsupported }
func listenTCP(ip [4]byte, port int) (int, error) { return -1, errUnsupported }
func bindUDP(ip [4]byte, port int) (int, error)   { return -1, errUnsupported }
