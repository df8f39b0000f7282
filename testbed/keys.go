package testbed

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// keyPair is an ed25519 key in OpenSSH's file formats.
type keyPair struct {
	// Private is the private key file (OpenSSH format, PEM).
	Private []byte
	// Public is the public key line ("ssh-ed25519 AAAA... comment\n").
	Public []byte
	// Key is the public key.
	Key ssh.PublicKey
}

// newKeyPair makes a fresh ed25519 key with the given comment.
func newKeyPair(comment string) (keyPair, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return keyPair{}, fmt.Errorf("generate ed25519 key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return keyPair{}, fmt.Errorf("marshal private key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return keyPair{}, fmt.Errorf("public key: %w", err)
	}
	line := ssh.MarshalAuthorizedKey(sshPub) // ends in "\n"
	line = append(line[:len(line)-1], []byte(" "+comment+"\n")...)
	return keyPair{Private: pem.EncodeToMemory(block), Public: line, Key: sshPub}, nil
}

// knownHostsLine is the known_hosts line of a host at address ip.
func knownHostsLine(ip string, key ssh.PublicKey) string {
	return ip + " " + string(ssh.MarshalAuthorizedKey(key))
}
