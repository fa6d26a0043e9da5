"""The mock eIDAS node's RSASSA-PSS signature and ECDH-ES encryption, checked by libxmlsec1 1.3
(the PyPI `xmlsec` wheel), an implementation this project did not write: if the mock and the
broker agreed on a mistake, this fails. Usage: check.py <fixture dir>. Exit status 0 = ok."""

import sys

import base64

import xmlsec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

DSIG = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
DS11 = "http://www.w3.org/2009/xmldsig11#"


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

    # ECDH-ES. libxmlsec1 1.3 ships ds:KeyValue key data disabled and the Python binding cannot
    # enable it, so the originator's ECKeyValue is handed over as a named key instead (the same
    # point); RecipientKeyInfo likewise names our key. Everything else (the agreement, ConcatKDF
    # with the message's parameters, the AES key wrap, AES-GCM) is xmlsec's own, in two steps:
    # see decrypt().
    plain = decrypt(d, tamper=False)
    got = etree.tostring(plain, method="c14n")
    want = etree.tostring(etree.parse(f"{d}/assertion.xml").getroot(), method="c14n")
    if got != want:
        sys.exit(f"FAIL: decrypted {got!r}, expected {want!r}")
    print("ECDH-ES decryption ok")
    try:
        decrypt(d, tamper=True)
    except xmlsec.Error:
        print("tampered wrapped key refused")
    else:
        sys.exit("FAIL: a tampered wrapped key decrypted")


def decrypt(d, tamper):
    enc = etree.parse(f"{d}/encrypted.xml").getroot()
    oki = enc.find(f".//{{{XENC}}}OriginatorKeyInfo")
    point = base64.b64decode(oki.find(f".//{{{DS11}}}PublicKey").text)
    curve = oki.find(f".//{{{DS11}}}NamedCurve").get("URI")
    assert curve == "urn:oid:1.2.840.10045.3.1.7", curve
    originator = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    pem = originator.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for parent, name in ((oki, "originator"), (enc.find(f".//{{{XENC}}}RecipientKeyInfo"), "sp")):
        for child in list(parent):
            parent.remove(child)
        etree.SubElement(parent, f"{{{DSIG}}}KeyName").text = name
    if tamper:
        wrapped = enc.find(f".//{{{XENC}}}EncryptedKey/{{{XENC}}}CipherData/{{{XENC}}}CipherValue")
        raw = bytearray(base64.b64decode(wrapped.text))
        raw[3] ^= 0x80
        wrapped.text = base64.b64encode(bytes(raw)).decode()
    manager = xmlsec.KeysManager()
    sp = xmlsec.Key.from_file(f"{d}/sp-ec-key.pem", xmlsec.constants.KeyDataFormatPem)
    sp.name = "sp"
    manager.add_key(sp)
    peer = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)
    peer.name = "originator"
    manager.add_key(peer)
    # Two steps, not one decrypt(enc): libxmlsec1 >= 1.3.13 counts the AgreementMethod inside the
    # EncryptedKey inside the EncryptedData as nesting level 2, over its default (and, from Python,
    # unchangeable) maxEncryptedKeyLevel of 1 ("maximum encrypted key level: cur=1;max=1"); 1.3.9
    # did not carry the level into the nested context. So xmlsec decrypts the EncryptedKey (ECDH-ES,
    # ConcatKDF, AES key unwrap) on its own, then the EncryptedData (AES-GCM) with that key.
    ek = enc.find(f"{{{DSIG}}}KeyInfo/{{{XENC}}}EncryptedKey")
    cek = xmlsec.EncryptionContext(manager).decrypt(ek)
    if len(cek) != 32:
        sys.exit(f"FAIL: the unwrapped content key has {len(cek)} bytes, not 32 (AES-256)")
    ctx = xmlsec.EncryptionContext()
    ctx.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, cek)
    return ctx.decrypt(enc)


if __name__ == "__main__":
    main(sys.argv[1])
