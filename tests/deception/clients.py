"""Real clients typing credentials at Extension-mode tripwires.

Usage: clients.py HOST SERVICE=PORT ...   (SERVICE: ftp smtp pop3 imap telnet
mysql mssql vnc smb). Each logs in with the user and password the test expects
(printed as `SERVICE user password`), expecting to be refused; failures of
the login are the point, anything else (no answer, a protocol error before
the login) is printed as `FAIL SERVICE reason` and makes the exit code 1.
"""
import ftplib
import imaplib
import poplib
import smtplib
import socket
import struct
import sys

TIMEOUT = 10


def ftp(host, port):
    f = ftplib.FTP()
    f.connect(host, port, timeout=TIMEOUT)
    try:
        f.login("ftpuser", "ftp-Secret1")
    except ftplib.error_perm:
        return "ftpuser", "ftp-Secret1"
    raise RuntimeError("login accepted")


def smtp(host, port):
    s = smtplib.SMTP(host, port, timeout=TIMEOUT)
    s.ehlo("client.example")
    try:
        s.login("mailuser", "smtp-Secret2")  # AUTH PLAIN or LOGIN, as offered
    except smtplib.SMTPAuthenticationError:
        return "mailuser", "smtp-Secret2"
    raise RuntimeError("login accepted")


def pop3(host, port):
    p = poplib.POP3(host, port, timeout=TIMEOUT)
    p.user("popuser")
    try:
        p.pass_("pop-Secret3")
    except poplib.error_proto:
        return "popuser", "pop-Secret3"
    raise RuntimeError("login accepted")


def imap(host, port):
    m = imaplib.IMAP4(host, port, timeout=TIMEOUT)
    try:
        m.login("imapuser", "imap Secret4")
    except imaplib.IMAP4.error:
        return "imapuser", "imap Secret4"
    raise RuntimeError("login accepted")


def recv_until(sock, *markers):
    """What sock sends until one of markers (or an error if it closes)."""
    data = b""
    while not any(m in data for m in markers):
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError(f"closed before {markers!r}: {data!r}")
        data += chunk
    return data


# Login prompts: Linux, BusyBox and JetDirect say "login: ", Cisco-style
# devices (and OpenCanary, which the deception-scan benchmark runs these
# clients against) "Username: ".
LOGIN_PROMPTS = (b"login: ", b"Username: ")


def refuse_options(data):
    """WONT/DONT for every DO/WILL in data, as a client that wants none."""
    out = b""
    for i in range(len(data) - 2):
        if data[i] == 0xFF and data[i + 1] in (0xFB, 0xFD):
            out += bytes([0xFF, 0xFE if data[i + 1] == 0xFB else 0xFC, data[i + 2]])
    return out


def telnet(host, port):
    # What a telnet client does: answer the server's options at once
    # (refusing them all; servers print the prompt after the answers), then
    # type at the prompts. telnetlib is gone from newer Pythons.
    s = socket.create_connection((host, port), timeout=TIMEOUT)
    data = s.recv(4096)
    s.sendall(refuse_options(data))
    if not any(p in data for p in LOGIN_PROMPTS):
        recv_until(s, *LOGIN_PROMPTS)
    s.sendall(b"telnetuser\r\n")
    recv_until(s, b"assword: ")
    s.sendall(b"telnet-Secret5\r\n")
    recv_until(s, *LOGIN_PROMPTS)
    return "telnetuser", "telnet-Secret5"


def mysql(host, port):
    import pymysql

    try:
        pymysql.connect(host=host, port=port, user="dbuser", password="mysql-Secret6",
                        database="shop", connect_timeout=TIMEOUT)
    except pymysql.err.OperationalError as e:
        if e.args[0] != 1045:
            raise
        return "dbuser", "mysql-Secret6"
    raise RuntimeError("login accepted")


def mssql(host, port):
    import pytds

    try:
        pytds.connect(server=host, port=port, user="sa", password="mssql-Secret7",
                      login_timeout=TIMEOUT, timeout=TIMEOUT, autocommit=True)
    except pytds.tds_base.Error as e:
        if "Login failed" not in str(e):
            raise
        return "sa", "mssql-Secret7"
    raise RuntimeError("login accepted")


def vnc(host, port):
    # An RFB 3.8 client (RFC 6143) with VNC Authentication: DES with the
    # password, bits reversed per byte, as every VNC client does.
    from Crypto.Cipher import DES

    s = socket.create_connection((host, port), timeout=TIMEOUT)
    version = recv_until(s, b"\n")
    if not version.startswith(b"RFB 003."):
        raise RuntimeError(f"not RFB: {version!r}")
    s.sendall(b"RFB 003.008\n")
    count = s.recv(1)[0]
    types = s.recv(count)
    if 2 not in types:
        raise RuntimeError(f"no VNC auth in {types!r}")
    s.sendall(b"\x02")
    challenge = b""
    while len(challenge) < 16:
        challenge += s.recv(16 - len(challenge))
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in b"vnc-Sec8".ljust(8, b"\0")[:8])
    s.sendall(DES.new(key, DES.MODE_ECB).encrypt(challenge))
    result = struct.unpack(">I", s.recv(4))[0]
    if result != 1:
        raise RuntimeError("VNC password accepted")
    return "", "vnc-Sec8:" + challenge.hex() + ":" + DES.new(key, DES.MODE_ECB).encrypt(challenge).hex()


def smb(host, port):
    from impacket.smbconnection import SMBConnection, SessionError

    c = SMBConnection("WS01", host, sess_port=port, timeout=TIMEOUT)
    try:
        c.login("smbuser", "smb-Secret12", "CORP")
    except SessionError as e:
        if "LOGON_FAILURE" not in str(e):
            raise
        return "smbuser", "smb-Secret12"
    raise RuntimeError("login accepted")


CLIENTS = dict(ftp=ftp, smtp=smtp, pop3=pop3, imap=imap, telnet=telnet, mysql=mysql,
               mssql=mssql, vnc=vnc, smb=smb)


def main():
    host = sys.argv[1]
    failed = False
    for spec in sys.argv[2:]:
        name, port = spec.split("=")
        try:
            user, password = CLIENTS[name](host, int(port))
            print(name, user, password, flush=True)
        except Exception as e:  # report every client, then fail
            print("FAIL", name, type(e).__name__, e, flush=True)
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
