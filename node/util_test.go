package node

import ma "github.com/multiformats/go-multiaddr"

type ma_Multiaddr = ma.Multiaddr

func codeOf(name string) int {
	switch name {
	case "tcp":
		return ma.P_TCP
	case "quic-v1":
		return ma.P_QUIC_V1
	}
	panic("unknown transport " + name)
}
