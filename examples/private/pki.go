package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"
)

// pki is a throwaway certificate authority and the two certificates it
// signed: the payments server's and the gateway's client certificate. A real
// deployment loads them from files (PrivateConfig's CertFile, KeyFile and
// CAFile) issued by its own CA.
type pki struct {
	roots          *x509.CertPool // the CA, trusted by both sides
	server, client tls.Certificate
}

func newPKI() (*pki, error) {
	ca, caKey, err := issue("gatekit example CA", &x509.Certificate{
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	if err != nil {
		return nil, err
	}
	server, serverKey, err := issue("payments.internal", &x509.Certificate{
		DNSNames:    []string{"payments.internal"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
	if err != nil {
		return nil, err
	}
	client, clientKey, err := issue("gatekit-gateway", &x509.Certificate{
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey)
	if err != nil {
		return nil, err
	}
	p := &pki{
		roots:  x509.NewCertPool(),
		server: tls.Certificate{Certificate: [][]byte{server.Raw}, PrivateKey: serverKey, Leaf: server},
		client: tls.Certificate{Certificate: [][]byte{client.Raw}, PrivateKey: clientKey, Leaf: client},
	}
	p.roots.AddCert(ca)
	return p, nil
}

// issue makes a certificate named cn from tmpl, valid for a day, signed by
// parent (nil: self-signed).
func issue(cn string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.Subject = pkix.Name{CommonName: cn}
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}
