// AutoMTLS: the plugin's half of go-plugin's automatic mutual TLS.
//
// When the host runs with AutoMTLS it generates a throwaway certificate,
// passes it (PEM) in PLUGIN_CLIENT_CERT and dials the plugin over TLS,
// presenting that certificate. The plugin in turn:
//
//  1. makes its own throwaway key pair and self-signed certificate,
//  2. serves TLS with it and demands a client certificate that verifies
//     against PLUGIN_CLIENT_CERT (the host's certificate is its own root),
//  3. hands its certificate to the host as the 6th field of the handshake
//     line: the DER bytes, standard base64 without '=' padding.
//
// The host then trusts exactly that certificate and checks that it is valid
// for the name "localhost" and for server authentication, so both are in it.

import 'reflect-metadata'; // @peculiar/x509 needs a Reflect metadata polyfill
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';

export interface ServerCertificate {
  /** PEM of the PKCS#8 private key. */
  keyPem: string;
  /** PEM of the self-signed certificate. */
  certPem: string;
  /** The certificate's DER, base64 without padding: the handshake's 6th field. */
  handshakeField: string;
}

// P-256 is fast to generate and every TLS stack speaks it. The host's own
// certificate is P-521, which Node's OpenSSL also verifies without help.
const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

// A positive, non-zero 128-bit serial number, as hex.
function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = (b[0] & 0x7f) | 0x01;
  return b.toString('hex');
}

export async function makeServerCertificate(now: Date = new Date()): Promise<ServerCertificate> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;

  const notBefore = new Date(now.getTime() - 30_000); // tolerate small clock differences
  const notAfter = new Date(now.getTime() + 10 * 365 * 24 * 3600 * 1000); // outlives any process

  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: 'CN=localhost, O=agenthost plugin',
    notBefore,
    notAfter,
    signingAlgorithm: algorithm,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(
        [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });

  const der = cert.rawData;
  const keyDer = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    keyPem: pem('PRIVATE KEY', keyDer),
    certPem: pem('CERTIFICATE', der),
    handshakeField: Buffer.from(der).toString('base64').replace(/=+$/, ''),
  };
}

// checkClientCertificate fails early, with a clear message, on a
// PLUGIN_CLIENT_CERT that is not a usable PEM certificate; otherwise the
// failure would only show as a TLS error on the host's first call.
export function checkClientCertificate(pemText: string): { subject: string; validTo: string } {
  if (!pemText.includes('-----BEGIN CERTIFICATE-----')) {
    throw new Error('PLUGIN_CLIENT_CERT is set but holds no PEM certificate');
  }
  const c = new X509Certificate(pemText);
  return { subject: c.subject.replace(/\n/g, ', '), validTo: c.validTo };
}
