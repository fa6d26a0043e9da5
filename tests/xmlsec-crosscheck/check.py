"""The mock eIDAS node's RSASSA-PSS signature and ECDH-ES encryption, checked by libxmlsec1 1.3
(the PyPI `xmlsec` wheel), an implementation this project did not write: if the mock and the
broker agreed on a mistake, this fails. Usage: check.py <fixture dir>. Exit status 0 = ok."""

import sys

import xmlsec
from lxml import etree

DSIG = "http://www.w3.org/2000/09/xmldsig#"


def verify(path, cert):
    root = etree.parse(path).getroot()
    xmlsec.tree.add_ids(root, ["ID"])
    sig = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_file(cert, xmlsec.constants.KeyDataFormatCertPem)
    ctx.verify(sig)  # raises xmlsec.Error
    return sig.find(f".//{{{DSIG}}}SignatureMethod").get("Algorithm")


def main(d):
    assert xmlsec.get_libxmlsec_version() >= (1, 3, 0), xmlsec.get_libxmlsec_version()
    method = verify(f"{d}/metadata.xml", f"{d}/node-signing-cert.pem")
    assert method == "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1", method
    print(f"signature ok: {method} (libxmlsec1 {xmlsec.get_libxmlsec_version()})")

    # The check can fail: a changed byte in the signed content must not verify.
    text = open(f"{d}/metadata.xml", encoding="utf-8").read()
    with open(f"{d}/metadata-tampered.xml", "w", encoding="utf-8") as f:
        f.write(text.replace("Mock eIDAS node (test only)", "Mock eIDAS node (test 0nly)"))
    try:
        verify(f"{d}/metadata-tampered.xml", f"{d}/node-signing-cert.pem")
    except xmlsec.Error:
        print("tampered signature refused")
    else:
        sys.exit("FAIL: a tampered document verified")

    manager = xmlsec.KeysManager()
    key = xmlsec.Key.from_file(f"{d}/sp-ec-key.pem", xmlsec.constants.KeyDataFormatPem)
    key.load_cert_from_file(f"{d}/sp-ec-cert.pem", xmlsec.constants.KeyDataFormatCertPem)
    manager.add_key(key)
    enc = etree.parse(f"{d}/encrypted.xml").getroot()
    ctx = xmlsec.EncryptionContext(manager)
    plain = ctx.decrypt(enc)
    got = etree.tostring(plain) if not isinstance(plain, bytes) else plain
    want = etree.tostring(etree.parse(f"{d}/assertion.xml").getroot())
    if etree.tostring(etree.fromstring(got), method="c14n") != etree.tostring(
        etree.fromstring(want), method="c14n"
    ):
        sys.exit(f"FAIL: decrypted {got!r}, expected {want!r}")
    print("ECDH-ES decryption ok")


if __name__ == "__main__":
    main(sys.argv[1])
