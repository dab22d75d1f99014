"""AutoMTLS: the plugin's half of go-plugin's automatic mutual TLS.

When the host runs with AutoMTLS it makes a throwaway certificate, passes it
(PEM) in PLUGIN_CLIENT_CERT and dials the plugin over TLS presenting it. The
plugin in turn makes its own throwaway key and self-signed certificate,
serves TLS with it demanding a client certificate that verifies against
PLUGIN_CLIENT_CERT, and hands its certificate to the host as the sixth
field of the handshake line: the DER bytes, standard base64 without '='
padding. The host then trusts exactly that certificate, and checks that it
is valid for the name "localhost" and for server authentication.
"""

import base64
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def server_certificate(now=None):
    """A throwaway key and self-signed certificate: (key PEM, certificate PEM, handshake field)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    # P-256 is fast to make and every TLS stack speaks it.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "agenthost plugin")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A little in the past against clock skew; longer than any process lives.
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    field = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode().rstrip("=")
    return key_pem, cert_pem, field


def check_client_certificate(pem):
    """Fails early, with a clear message, on a PLUGIN_CLIENT_CERT that is not
    a PEM certificate; otherwise the failure would only show as a TLS error
    on the host's first call. Returns the certificate's subject."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError("PLUGIN_CLIENT_CERT is set but holds no PEM certificate")
    return x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string()
