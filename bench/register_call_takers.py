#!/usr/bin/env python3
"""Registers many call-takers' phones (digest, qop=auth) whose Contact is one SIPp answerer.

SIPp 3.6 cannot take a per-call user name inside [authentication], so the bench registers its
thousands of call-takers with this loop instead: REGISTER, 401, REGISTER with credentials, 200.
Usage: register_call_takers.py PLATFORM_PORT CONTACT_PORT PASSWORD LOGIN...
"""
import hashlib
import re
import socket
import sys


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def register(sock, platform, contact_port, login, password, n):
    base = (
        "REGISTER sip:127.0.0.1:{p} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bK-{n}-{c}\r\n"
        "From: <sip:{u}@127.0.0.1>;tag=t{n}\r\nTo: <sip:{u}@127.0.0.1>\r\n"
        "Call-ID: reg-{n}@bench\r\nCSeq: {c} REGISTER\r\n"
        "Contact: <sip:{u}@127.0.0.1:{cp}>\r\nExpires: 3600\r\nMax-Forwards: 70\r\n{auth}"
        "Content-Length: 0\r\n\r\n"
    )
    lp = sock.getsockname()[1]
    sock.sendto(base.format(p=platform, lp=lp, n=n, c=1, u=login, cp=contact_port, auth="").encode(),
                ("127.0.0.1", platform))
    answer = sock.recv(65536).decode(errors="replace")
    nonce = re.search(r'nonce="([^"]+)"', answer).group(1)
    uri = "sip:127.0.0.1:%d" % platform
    ha1 = md5("%s:secourir:%s" % (login, password))
    ha2 = md5("REGISTER:%s" % uri)
    response = md5("%s:%s:00000001:c%d:auth:%s" % (ha1, nonce, n, ha2))
    auth = ('Authorization: Digest username="%s", realm="secourir", nonce="%s", uri="%s", '
            'response="%s", algorithm=MD5, qop=auth, nc=00000001, cnonce="c%d"\r\n'
            % (login, nonce, uri, response, n))
    sock.sendto(base.format(p=platform, lp=lp, n=n, c=2, u=login, cp=contact_port, auth=auth).encode(),
                ("127.0.0.1", platform))
    answer = sock.recv(65536).decode(errors="replace")
    if not answer.startswith("SIP/2.0 200"):
        raise SystemExit("%s: %s" % (login, answer.splitlines()[0]))


def main():
    platform, contact_port, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    for n, login in enumerate(sys.argv[4:], 1):
        register(sock, platform, contact_port, login, password, n)
    print("%d phones registered" % (len(sys.argv) - 4), file=sys.stderr)


main()
