#!/usr/bin/env python3
"""Synthetic labelled PII set, written from the detectors' rules (not from any eval file).

  python3 tests/tools/pii_synth.py [--seed N] [--n PER_KIND] > synth.jsonl
  python3 tests/tools/pii_eval.py --gold synth.jsonl --score ../shared/eval/pii/score.py

Each line has the eval format (id, text, entities with code-point start/end, ignore,
label_scope, context, negative_kind, source). Values are built from the rules: E.164 and national
phone plans, IBAN country lengths with computed mod-97 check digits, card issuer prefixes and
lengths with Luhn, SSA area/group/serial rules, NINO prefix rules, IPv6 in every textual form,
IMEI with Luhn, real base64url JWTs. Negatives are the look-alikes the rules exclude (timestamps,
order and invoice numbers, versions, OIDs, request-id UUIDs, ISBNs, hashes, prices, dates).
Deterministic for a seed; stdlib only; needs nothing outside this tree.
"""
import argparse, base64, json, random, string, sys
from urllib.parse import quote

R = random.Random()


# ---------------------------------------------------------------- value builders

def luhn_digit(body):
    s = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        s += d
    return str((10 - s % 10) % 10)


def digits(n):
    return "".join(R.choice(string.digits) for _ in range(n))


def group(s, sizes, sep):
    out, i = [], 0
    for g in sizes:
        if i >= len(s):
            break
        out.append(s[i:i + g])
        i += g
    if i < len(s):
        out.append(s[i:])
    return sep.join(out)


CARD_ISSUERS = [  # (prefix choices, length, grouping)
    (["4"], 16, [4, 4, 4, 4]), (["4"], 13, [4, 4, 5]),
    (["51", "52", "53", "54", "55"], 16, [4, 4, 4, 4]),
    (["2221", "2300", "2500", "2720"], 16, [4, 4, 4, 4]),
    (["34", "37"], 15, [4, 6, 5]),
    (["6011", "644", "649", "65"], 16, [4, 4, 4, 4]),
    (["3528", "3540", "3589"], 16, [4, 4, 4, 4]),
    (["36", "300", "305", "38"], 14, [4, 6, 4]),
    (["62"], 16, [4, 4, 4, 4]), (["62"], 19, [4, 4, 4, 4, 3]),
    (["6759", "5018", "6304"], 16, [4, 4, 4, 4]),
]


def card(valid=True):
    pre, ln, grp = R.choice(CARD_ISSUERS)
    p = R.choice(pre)
    body = p + digits(ln - len(p) - 1)
    ck = luhn_digit(body)
    if not valid:
        ck = str((int(ck) + R.randint(1, 9)) % 10)
    num = body + ck
    sep = R.choice(["", " ", "-", " ", "-"])
    return group(num, grp, sep) if sep else num


# IBAN: country -> BBAN pattern (n = digit, a = upper letter, c = alnum), lengths per the registry.
IBAN_BBAN = {
    "DE": "18n", "GB": "4a14n", "FR": "10n11c2n", "ES": "20n", "IT": "1a10n12c", "NL": "4a10n",
    "BE": "12n", "AT": "16n", "CH": "5n12c", "PL": "24n", "SE": "20n", "NO": "11n", "DK": "14n",
    "FI": "14n", "IE": "4a14n", "PT": "21n", "LU": "3n13c", "SA": "2n18c", "AE": "19n",
    "TR": "5n1n16c", "BR": "23n1a1c", "MT": "4a5n18c", "CY": "8n16c", "GR": "7n16c", "HU": "24n",
    "CZ": "20n", "SK": "20n", "RO": "4a16c", "BG": "4a6n8c", "HR": "17n", "SI": "15n", "LT": "16n",
    "LV": "4a13c", "EE": "16n", "IS": "22n", "LI": "5n12c", "MC": "10n11c2n", "KW": "4a22c",
    "QA": "4a21c", "IL": "19n", "JO": "4a4n18c", "UA": "6n19c", "KZ": "3n13c", "GE": "2a16n",
    "AZ": "4a20c", "PK": "4a16c", "MU": "4a19n3a", "XK": "16n", "RS": "18n", "ME": "18n",
}


def bban(pat):
    out, num = [], ""
    for ch in pat:
        if ch.isdigit():
            num += ch
            continue
        k = int(num); num = ""
        pool = {"n": string.digits, "a": string.ascii_uppercase, "c": string.digits + string.ascii_uppercase}[ch]
        out.append("".join(R.choice(pool) for _ in range(k)))
    return "".join(out)


def iban_check(cc, b):
    s = b + cc + "00"
    v = int("".join(str(int(ch, 36)) for ch in s))
    return "%02d" % (98 - v % 97)


def iban(valid=True, cc=None):
    cc = cc or R.choice(sorted(IBAN_BBAN))
    b = bban(IBAN_BBAN[cc])
    ck = iban_check(cc, b)
    if not valid:
        ck = "%02d" % ((int(ck) + R.randint(1, 40)) % 97 + 2)
        if ck == iban_check(cc, b):
            ck = "%02d" % ((int(ck) + 1) % 97 + 2)
    s = cc + ck + b
    if R.random() < 0.55:
        s = group(s, [4] * 9, " ")
    return s


def ssn(valid=True):
    while True:
        a = R.randint(1, 899)
        if a != 666:
            break
    g, s = R.randint(1, 99), R.randint(1, 9999)
    if not valid:
        k = R.randint(0, 3)
        if k == 0: a = R.choice([0, 666, R.randint(900, 999)])
        elif k == 1: g = 0
        elif k == 2: s = 0
        else: a = R.randint(900, 999)
    sep = R.choice(["-", "-", " ", ""])
    return "%03d%s%02d%s%04d" % (a, sep, g, sep, s)


NINO_FIRST = [c for c in string.ascii_uppercase if c not in "DFIQUV"]
NINO_SECOND = [c for c in string.ascii_uppercase if c not in "DFIOQUV"]


def nino():
    while True:
        p = R.choice(NINO_FIRST) + R.choice(NINO_SECOND)
        if p not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
            break
    d = digits(6)
    suf = R.choice("ABCD")
    if R.random() < 0.5:
        return "%s %s %s %s %s" % (p, d[:2], d[2:4], d[4:], suf)
    return p + d + suf


def ipv4():
    while True:
        a = R.choice([R.randint(1, 223), 81, 185, 203, 91, 151])
        if a not in (10, 127, 0):
            break
    return "%d.%d.%d.%d" % (a, R.randint(0, 255), R.randint(0, 255), R.randint(1, 254))


def ipv6():
    gs = [R.choice(["2a00", "2a02", "2607", "2001", "2406", "2c0f", "2800"])] + ["%x" % R.randint(0, 0xffff) for _ in range(7)]
    k = R.randint(0, 7)
    if k == 0:
        return ":".join(gs)
    if k == 1:
        return ":".join("%04x" % int(g, 16) for g in gs)
    if k == 2:  # compressed run of zeros
        i = R.randint(2, 5)
        return ":".join(gs[:i]) + "::" + ":".join(gs[i + 2:])
    if k == 3:
        return ":".join(gs[:3]) + "::" + gs[7]
    if k == 4:
        return "::ffff:" + ipv4()
    if k == 5:
        return "64:ff9b::" + ipv4()
    if k == 6:
        return "fe80::%x:%x:%x:%x%%%s" % (R.randint(0, 0xffff), R.randint(0, 0xffff), R.randint(0, 0xffff),
                                         R.randint(0, 0xffff), R.choice(["eth0", "en0", "wlan0", "3"]))
    return ":".join(gs).upper()


def email():
    first = R.choice(["anna", "jose", "li.wei", "o'brien", "m.schmidt", "k_tanaka", "noah", "amelie", "raj.p"])
    local = first
    r = R.random()
    if r < 0.3:
        local += "+" + R.choice(["news", "shop", "2024", "work"])
    elif r < 0.5:
        local += str(R.randint(1, 999))
    dom = R.choice(["gmail.com", "mail.example.co.uk", "eu.corp-mail.de", "students.uni-wien.ac.at", "outlook.fr",
                    "post.example.com.br", "yandex.ru", "proton.me", "company.io", "dept.gov.au"])
    return local + "@" + dom


PHONE_FORMS = [
    lambda: "+1 (%d%s) %d%s-%s" % (R.randint(2, 9), digits(2), R.randint(2, 9), digits(2), digits(4)),
    lambda: "(%d%s) %d%s-%s" % (R.randint(2, 9), digits(2), R.randint(2, 9), digits(2), digits(4)),
    lambda: "%d%s-%d%s-%s" % (R.randint(2, 9), digits(2), R.randint(2, 9), digits(2), digits(4)),
    lambda: "%d%s.%d%s.%s" % (R.randint(2, 9), digits(2), R.randint(2, 9), digits(2), digits(4)),
    lambda: "+1-%d%s-%d%s-%s" % (R.randint(2, 9), digits(2), R.randint(2, 9), digits(2), digits(4)),
    lambda: "+44 20 %s %s" % (digits(4), digits(4)),
    lambda: "020 %s %s" % (digits(4), digits(4)),
    lambda: "+44 7%s %s" % (digits(3), digits(6)),
    lambda: "07%s %s" % (digits(3), digits(6)),
    lambda: "+49 30 %s" % digits(8),
    lambda: "+49 (0)89 %s %s" % (digits(3), digits(4)),
    lambda: "030 %s" % digits(8),
    lambda: "+49 151 %s" % digits(8),
    lambda: "+33 %d %s %s %s %s" % (R.randint(1, 7), digits(2), digits(2), digits(2), digits(2)),
    lambda: "0%d %s %s %s %s" % (R.randint(1, 7), digits(2), digits(2), digits(2), digits(2)),
    lambda: "0%d.%s.%s.%s.%s" % (R.randint(1, 7), digits(2), digits(2), digits(2), digits(2)),
    lambda: "+91 9%s %s" % (digits(4), digits(5)),
    lambda: "+55 11 9%s-%s" % (digits(4), digits(4)),
    lambda: "+55 (11) 9%s-%s" % (digits(4), digits(4)),
    lambda: "+81 3-%s-%s" % (digits(4), digits(4)),
    lambda: "03-%s-%s" % (digits(4), digits(4)),
    lambda: "+61 2 %s %s" % (digits(4), digits(4)),
    lambda: "(02) %s %s" % (digits(4), digits(4)),
    lambda: "04%s %s %s" % (digits(2), digits(3), digits(3)),
    lambda: "+31 20 %s %s" % (digits(3), digits(4)),
    lambda: "+31 6 %s" % digits(8),
    lambda: "+34 6%s %s %s %s" % (digits(2), digits(2), digits(2), digits(2)),
    lambda: "+39 06 %s %s" % (digits(4), digits(4)),
    lambda: "+39 3%s %s" % (digits(2), digits(7)),
    lambda: "+52 55 %s %s" % (digits(4), digits(4)),
    lambda: "+86 1%s %s %s" % (digits(2), digits(4), digits(4)),
    lambda: "+86-10-%s-%s" % (digits(4), digits(4)),
    lambda: "+7 495 %s-%s-%s" % (digits(3), digits(2), digits(2)),
    lambda: "+27 21 %s %s" % (digits(3), digits(4)),
    lambda: "+353 1 %s %s" % (digits(3), digits(4)),
    lambda: "+46 8 %s %s %s" % (digits(3), digits(2), digits(2)),
    lambda: "+41 44 %s %s %s" % (digits(3), digits(2), digits(2)),
    lambda: "+48 %s %s %s" % (digits(3), digits(3), digits(3)),
    lambda: "+65 %s %s" % (R.choice("689") + digits(3), digits(4)),
    lambda: "+971 50 %s %s" % (digits(3), digits(4)),
    lambda: "+44%s" % ("7" + digits(9)),
    lambda: "+1%d%s%d%s" % (R.randint(2, 9), digits(2), R.randint(2, 9), digits(6)),
    lambda: "+49%s" % ("1" + digits(10)),
    lambda: "+33%d%s" % (R.randint(6, 7), digits(8)),
]


def phone():
    return R.choice(PHONE_FORMS)()


def mac():
    b = ["%02x" % R.randint(0, 255) for _ in range(6)]
    b[0] = "%02x" % (int(b[0], 16) & 0xfc)
    k = R.randint(0, 3)
    if k == 0:
        return ":".join(b)
    if k == 1:
        return "-".join(b).upper()
    if k == 2:
        return ":".join(b).upper()
    h = "".join(b)
    return "%s.%s.%s" % (h[:4], h[4:8], h[8:])


def imei():
    body = R.choice(["35", "86", "01", "49"]) + digits(12)
    return body + luhn_digit(body)


def uuid4():
    h = "%032x" % R.getrandbits(128)
    h = h[:12] + "4" + h[13:16] + R.choice("89ab") + h[17:]
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt():
    hdr = {"alg": R.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    pl = {"sub": str(R.randint(10 ** 5, 10 ** 9)), "iat": R.randint(1600000000, 1800000000),
          "exp": R.randint(1800000000, 1900000000), "scope": R.choice(["read", "read write", "admin"])}
    sig = bytes(R.getrandbits(8) for _ in range(R.choice([32, 64])))
    return "%s.%s.%s" % (b64u(json.dumps(hdr).encode()), b64u(json.dumps(pl).encode()), b64u(sig))


def token(n=32):
    return "".join(R.choice(string.ascii_letters + string.digits) for _ in range(n))


def api_key():
    k = R.randint(0, 4)
    if k == 0: return "sk_live_" + token(24)
    if k == 1: return "AKIA" + "".join(R.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    if k == 2: return "ghp_" + token(36)
    if k == 3: return "xoxb-" + digits(11) + "-" + digits(12) + "-" + token(24)
    return "AIza" + "".join(R.choice(string.ascii_letters + string.digits + "_-") for _ in range(35))


def coord_pair():
    lat = "%.*f" % (R.randint(4, 6), R.uniform(-89.9, 89.9))
    lon = "%.*f" % (R.randint(4, 6), R.uniform(-179.9, 179.9))
    return lat, lon


def dob():
    y, m, d = R.randint(1940, 2005), R.randint(1, 12), R.randint(1, 28)
    return R.choice(["%04d-%02d-%02d" % (y, m, d), "%02d/%02d/%04d" % (m, d, y), "%02d.%02d.%04d" % (d, m, y)])


FIRST = ["María", "Jürgen", "Aisha", "Chen", "Olivia", "Mateo", "Søren", "Priya", "Kwame", "Élodie", "Yusuf", "Hannah"]
LAST = ["García", "Müller", "Okafor", "Nguyen", "Smith", "Rossi", "Kowalski", "Tanaka", "Dubois", "O'Neill"]


# ---------------------------------------------------------------- line builders

class Line:
    """Text built from pieces; entity pieces record their code-point span."""

    def __init__(self):
        self.parts, self.ents = [], []

    def add(self, s, typ=None):
        if typ:
            st = sum(len(p) for p in self.parts)
            self.ents.append({"type": typ, "start": st, "end": st + len(s)})
        self.parts.append(s)
        return self

    def text(self):
        return "".join(self.parts)


OUT = []


def emit(kind, ctx, ln, neg=None):
    OUT.append({"id": "synth-%s-%04d" % (kind, len(OUT)), "text": ln.text(), "entities": ln.ents, "ignore": [],
                "label_scope": "all", "context": ctx, "negative_kind": neg if not ln.ents else None,
                "source": "tests/tools/pii_synth.py (rule-built)"})


def prose(kind, typ, value, lead, tail=""):
    emit(kind, "free_text", Line().add(lead).add(value, typ).add(tail))


def jsonl(kind, key, value, typ, neg=None, extra=None):
    """One JSON object with key: value (string), plus an unrelated member."""
    ln = Line().add("{")
    if extra:
        ln.add('"%s": "%s", ' % extra)
    ln.add('"%s": "' % key).add(value, typ).add('", "plan": "pro"}')
    emit(kind, "json", ln, neg)


def query(kind, key, value, typ, neg=None, enc=True):
    ln = Line().add("/v1/%s?page=2&" % R.choice(["users", "events", "track", "collect"])).add(key + "=")
    ln.add(quote(value, safe="") if enc else value, typ).add("&lang=en")
    emit(kind, "query", ln, neg)


def header(kind, name, value, typ, neg=None, prefix=""):
    ln = Line().add("Host: api.example.net\r\n").add(name + ": " + prefix).add(value, typ)
    ln.add("\r\nAccept: application/json")
    emit(kind, "headers", ln, neg)


def form(kind, key, value, typ, neg=None):
    ln = Line().add("step=2&").add(key + "=").add(quote(value, safe="").replace("%20", "+"), typ).add("&submit=Send")
    emit(kind, "form", ln, neg)


def positives(n):
    for _ in range(n):
        v = phone()
        r = R.randint(0, 5)
        if r == 0: prose("phone", "PHONE", v, R.choice(["Call me on ", "My phone number is ", "Tel: ", "mobile: "]), ".")
        elif r == 1: jsonl("phone", R.choice(["phone", "mobile", "tel", "phone_number", "contactPhone", "telephone"]), v, "PHONE")
        elif r == 2: form("phone", R.choice(["phone", "mobile", "tel"]), v, "PHONE")
        elif r == 3: query("phone", R.choice(["phone", "msisdn", "tel"]), v, "PHONE")
        elif r == 4: prose("phone", "PHONE", v, "Reach the customer at ", " after 6pm.") if v.startswith("+") else \
            prose("phone", "PHONE", v, "Phone: ", "")
        else: emit("phone", "free_text", Line().add("Name: %s %s\nPhone: " % (R.choice(FIRST), R.choice(LAST))).add(v, "PHONE"))

        v = iban()
        r = R.randint(0, 3)
        if r == 0: prose("iban", "IBAN", v, R.choice(["Please wire it to ", "IBAN: ", "my account is "]), " thanks")
        elif r == 1: jsonl("iban", R.choice(["iban", "account", "payout_account"]), v, "IBAN")
        elif r == 2: form("iban", "iban", v, "IBAN")
        else: prose("iban", "IBAN", v, "Refund to IBAN ", " (BIC %s)" % "".join(R.choice(string.ascii_uppercase) for _ in range(8)))

        v = card()
        r = R.randint(0, 3)
        if r == 0: prose("card", "CREDIT_CARD", v, R.choice(["Card number ", "charge my card ", "cc: "]), ", exp 09/27")
        elif r == 1: jsonl("card", R.choice(["card_number", "pan", "cardNumber", "number"]), v, "CREDIT_CARD")
        elif r == 2: form("card", "cc_number", v, "CREDIT_CARD")
        else: prose("card", "CREDIT_CARD", v, "", " is the card on file")

        v = ssn()
        r = R.randint(0, 2)
        if r == 0 or len(v) == 9: jsonl("ssn", R.choice(["ssn", "social_security_number", "SSN"]), v, "US_SSN")
        elif r == 1: prose("ssn", "US_SSN", v, R.choice(["SSN: ", "my social security number is ", "SSN "]), ".")
        else: form("ssn", "ssn", v, "US_SSN")

        v = nino()
        if R.random() < 0.5: prose("nino", "NATIONAL_ID", v, R.choice(["NI number ", "National Insurance number: ", "NINO "]), "")
        else: jsonl("nino", R.choice(["ni_number", "nino", "national_insurance"]), v, "NATIONAL_ID")

        v = ipv4() if R.random() < 0.5 else ipv6()
        r = R.randint(0, 4)
        if r == 0: prose("ip", "IP_ADDRESS", v, R.choice(["Login from ", "client ip ", "The request came from "]), " at 10:42")
        elif r == 1: jsonl("ip", R.choice(["ip", "client_ip", "remote_addr", "ipAddress"]), v, "IP_ADDRESS")
        elif r == 2: query("ip", R.choice(["ip", "uip", "client_ip"]), v, "IP_ADDRESS", enc=R.random() < 0.5)
        elif r == 3: header("ip", R.choice(["X-Forwarded-For", "X-Real-IP", "True-Client-IP"]), v, "IP_ADDRESS")
        else:
            if ":" in v and "%" not in v:
                prose("ip", "IP_ADDRESS", v, "connect to [", "]:8443 failed")
            else:
                prose("ip", "IP_ADDRESS", v, "peer=", " port=51234")

        v = email()
        r = R.randint(0, 3)
        if r == 0: prose("email", "EMAIL", v, R.choice(["Contact: ", "write to ", "<"]), R.choice([" today", ">", "."]))
        elif r == 1: jsonl("email", R.choice(["email", "user", "contact"]), v, "EMAIL")
        elif r == 2: form("email", "email", v, "EMAIL")
        else: query("email", "email", v, "EMAIL")

        v = R.choice([mac, imei])()
        key = "mac" if ":" in v or "-" in v or "." in v else "imei"
        if R.random() < 0.5: jsonl("device", R.choice({"mac": ["mac", "mac_address", "wifi_mac"], "imei": ["imei", "device_imei"]}[key]), v, "DEVICE_ID")
        else: prose("device", "DEVICE_ID", v, {"mac": "MAC address ", "imei": "IMEI: "}[key], "")
        u = uuid4()
        if R.random() < 0.5: jsonl("adid", R.choice(["advertising_id", "idfa", "gaid", "device_id", "adid"]), u, "DEVICE_ID")
        else: query("adid", R.choice(["idfa", "aaid", "device_id"]), u, "DEVICE_ID")

        la, lo = coord_pair()
        r = R.randint(0, 2)
        if r == 0:
            ln = Line().add('{"lat": ').add(la, "GEO_COORDINATE").add(', "lng": ').add(lo, "GEO_COORDINATE").add(', "accuracy": 12}')
            emit("geo", "json", ln)
        elif r == 1:
            ln = Line().add("/v2/nearby?latitude=").add(la, "GEO_COORDINATE").add("&longitude=").add(lo, "GEO_COORDINATE").add("&radius=5")
            emit("geo", "query", ln)
        else:
            ln = Line().add("I am at ").add(la + ", " + lo, "GEO_COORDINATE").add(" right now")
            emit("geo", "free_text", ln)

        t = jwt()
        r = R.randint(0, 3)
        if r == 0: header("jwt", "Authorization", t, "AUTH_TOKEN", prefix="Bearer ")
        elif r == 1: jsonl("jwt", R.choice(["access_token", "id_token", "token"]), t, "AUTH_TOKEN")
        elif r == 2: query("jwt", "access_token", t, "AUTH_TOKEN")
        else: prose("jwt", "AUTH_TOKEN", t, "use token ", " for the call")
        r = R.randint(0, 2)
        if r == 0: header("key", R.choice(["X-Api-Key", "Authorization"]), api_key(), "AUTH_TOKEN")
        elif r == 1: jsonl("key", R.choice(["api_key", "apiKey", "secret"]), api_key(), "AUTH_TOKEN")
        else: header("cookie", "Cookie", token(40), "AUTH_TOKEN", prefix=R.choice(["sessionid=", "PHPSESSID=", "connect.sid="]))

        f, l = R.choice(FIRST), R.choice(LAST)
        ln = Line().add('{"first_name": "').add(f, "PERSON").add('", "last_name": "').add(l, "PERSON").add('", "dob": "').add(dob(), "DATE_OF_BIRTH").add('"}')
        emit("person", "json", ln)
        form("person", R.choice(["full_name", "name"]), f + " " + l, "PERSON")


def variants(n):
    """Less common but rule-conforming writings of the same types."""
    for _ in range(n):
        v = ipv4()
        r = R.randint(0, 5)
        if r == 0:
            ln = Line().add("Host: api.example.net\r\nX-Forwarded-For: ").add(ipv4(), "IP_ADDRESS").add(", ").add(v, "IP_ADDRESS")
            emit("ipv", "headers", ln)
        elif r == 1:
            ln = Line().add("Host: a.example\r\nForwarded: for=\"[").add(ipv6().split("%")[0], "IP_ADDRESS").add("]:4711\";proto=https")
            emit("ipv", "headers", ln)
        elif r == 2: prose("ipv", "IP_ADDRESS", v, "GET http://", ":8080/status returned 502")
        elif r == 3: prose("ipv", "IP_ADDRESS", ipv6(), "addr ", " is reachable")
        elif r == 4: jsonl("ipv", "ips", ipv6().upper().split("%")[0], "IP_ADDRESS")
        else: prose("ipv", "IP_ADDRESS", v, "server at ", ":443")

        r = R.randint(0, 4)
        e = email()
        if r == 0: prose("emailv", "EMAIL", e.upper(), "From: ", "")
        elif r == 1: prose("emailv", "EMAIL", e, "<a href=\"mailto:", "\">mail</a>")
        elif r == 2: prose("emailv", "EMAIL", '"john.smith"@example.org', "quoted: ", " ok")
        elif r == 3: header("emailv", "From", e, "EMAIL", prefix="%s <" % R.choice(FIRST))
        else: jsonl("emailv", "recipients", e, "EMAIL")

        r = R.randint(0, 4)
        if r == 0:
            b = R.choice(["35", "86"]) + digits(12); v = b + luhn_digit(b)
            prose("imeiv", "DEVICE_ID", "%s-%s-%s-%s" % (v[:2], v[2:8], v[8:14], v[14]), "IMEI ", "")
        elif r == 1: header("macv", "X-Device-Mac", mac(), "DEVICE_ID")
        elif r == 2: query("macv", "mac", mac(), "DEVICE_ID")
        elif r == 3: prose("macv", "DEVICE_ID", mac(), "device ", " joined the network")
        else: jsonl("imeiv", "imei", imei(), "DEVICE_ID")

        r = R.randint(0, 3)
        la, lo = coord_pair()
        if r == 0:
            emit("geov", "query", Line().add("/maps?ll=").add(la + "," + lo, "GEO_COORDINATE").add("&z=14"))
        elif r == 1:
            emit("geov", "json", Line().add('{"location": {"lat": "').add(la, "GEO_COORDINATE").add('", "lon": "').add(lo, "GEO_COORDINATE").add('"}}'))
        elif r == 2:
            emit("geov", "json", Line().add('{"position": "').add(la + "," + lo, "GEO_COORDINATE").add('"}'))
        else:
            emit("geov", "free_text", Line().add("geo:").add(la + "," + lo, "GEO_COORDINATE").add(";u=35"))

        r = R.randint(0, 3)
        if r == 0: prose("ssnv", "US_SSN", "%03d-%02d-%04d" % (R.randint(1, 665), R.randint(1, 99), R.randint(1, 9999)), "The applicant's number, ", ", was verified.")
        elif r == 1: prose("ninov", "NATIONAL_ID", nino(), "NI: ", "")
        elif r == 2: prose("ibanv", "IBAN", iban(), "", "")
        else: prose("cardv", "CREDIT_CARD", card(), "Paid with ", " yesterday")

        r = R.randint(0, 3)
        if r == 0: jsonl("phonev", R.choice(["whatsapp", "cell", "mobile_number", "phoneNumber", "fax"]), phone(), "PHONE")
        elif r == 1: header("phonev", "X-Caller", "+" + R.choice(["44", "49", "33", "1", "91"]) + digits(10), "PHONE")
        elif r == 2: prose("phonev", "PHONE", "+" + R.choice(["44", "49", "34", "61"]) + " " + digits(3) + " " + digits(3) + " " + digits(4), "ring ", " anytime")
        else: emit("phonev", "free_text", Line().add("Tel. ").add(phone(), "PHONE").add(" / Fax ").add(phone(), "PHONE"))

        r = R.randint(0, 3)
        f, l = R.choice(FIRST), R.choice(LAST)
        if r == 0: jsonl("personv", R.choice(["firstName", "given_name", "surname", "family_name", "lastName"]), f, "PERSON")
        elif r == 1: jsonl("dobv", R.choice(["birthday", "birthDate", "date_of_birth", "DOB"]), dob(), "DATE_OF_BIRTH")
        elif r == 2:
            emit("personv", "json", Line().add('{"customer": {"name": "').add(f + " " + l, "PERSON").add('", "tier": "gold"}}'))
        else: header("tokv", "Cookie", jwt(), "AUTH_TOKEN", prefix="theme=dark; auth_token=")


def negatives(n):
    for _ in range(n):
        ts = R.randint(1500000000, 1800000000)
        r = R.randint(0, 9)
        if r == 0: jsonl("neg", "created", str(ts), None, "timestamp")
        elif r == 1: prose_neg("order_number", "Order #%s has shipped" % digits(R.choice([8, 10, 12])))
        elif r == 2: prose_neg("invoice_number", "Invoice INV-%d-%s is due" % (R.randint(2019, 2026), digits(6)))
        elif r == 3: jsonl("neg", "ts", str(ts * 1000), None, "timestamp_ms")
        elif r == 4: prose_neg("tracking_number", "Tracking: 1Z%s%s" % ("".join(R.choice(string.ascii_uppercase + string.digits) for _ in range(6)), digits(10)))
        elif r == 5: prose_neg("isbn", "ISBN 978-%d-%s-%s-%d" % (R.randint(0, 9), digits(3), digits(5), R.randint(0, 9)))
        elif r == 6: prose_neg("price", "Total: $%d,%s.%s incl. VAT" % (R.randint(1, 99), digits(3), digits(2)))
        elif r == 7: prose_neg("date", "Due %04d-%02d-%02d 14:%02d:%02d UTC" % (R.randint(2020, 2026), R.randint(1, 12), R.randint(1, 28), R.randint(0, 59), R.randint(0, 59)))
        elif r == 8: jsonl("neg", "order_id", digits(16), None, "order_number_16")
        else: prose_neg("reference", "Ref %s-%s-%s" % (digits(4), digits(4), digits(4)))

        v = "%d.%d.%d.%d" % (R.randint(1, 30), R.randint(0, 40), R.randint(0, 300), R.randint(0, 999))
        r = R.randint(0, 5)
        if r == 0: query("neg", "v", v, None, "version_string")
        elif r == 1: jsonl("neg", R.choice(["app_version", "version", "build"]), v, None, "version_string")
        elif r == 2: header("neg", "User-Agent", "MyApp/%s (iPhone; iOS 17.4.1) CFNetwork/1494.0.7 Darwin/23.4.0" % v, None, "version_string")
        elif r == 3: prose_neg("oid", "OID %s" % R.choice(["1.3.6.1.4.1.%d.%d.%d" % (R.randint(1, 60000), R.randint(1, 9), R.randint(1, 99)),
                                                            "2.5.4.%d" % R.randint(3, 50), "1.2.840.113549.1.1.%d" % R.randint(1, 14)]))
        elif r == 4: prose_neg("version_string", "upgraded to v=%s yesterday" % v)
        else: prose_neg("version_string", "Chrome/%d.0.%d.%d" % (R.randint(90, 130), R.randint(1000, 7000), R.randint(10, 250)))

        r = R.randint(0, 4)
        if r == 0: header("neg", R.choice(["X-Request-Id", "X-Correlation-Id", "traceparent"]), uuid4(), None, "request_id_uuid")
        elif r == 1: jsonl("neg", R.choice(["request_id", "trace_id", "order_uuid", "idempotency_key"]), uuid4(), None, "request_id_uuid")
        elif r == 2: jsonl("neg", R.choice(["sha256", "checksum", "etag", "commit"]), "%064x" % R.getrandbits(256), None, "hex_hash")
        elif r == 3: query("neg", "request_id", uuid4(), None, "request_id_uuid")
        else: jsonl("neg", "md5", "%032x" % R.getrandbits(128), None, "hex_hash")

        r = R.randint(0, 4)
        if r == 0: jsonl("neg", "iban", iban(valid=False), None, "iban_checksum_fail")
        elif r == 1: prose_neg("luhn_fail", "card number %s" % card(valid=False))
        elif r == 2: jsonl("neg", "ssn", ssn(valid=False), None, "ssn_invalid")
        elif r == 3: prose_neg("email_lookalike", R.choice(["see logo@2x.png", "npm i lodash@4.17.21", "@channel please review", "user at example dot com"]))
        else: jsonl("neg", R.choice(["price", "amount", "score", "ratio"]), "%.4f" % R.uniform(1, 80), None, "coordinate_shaped_wrong_key")

        r = R.randint(0, 3)
        if r == 0: jsonl("neg", R.choice(["product_name", "file_name", "app_name"]), R.choice(["Blue Widget", "report.pdf", "Acme Sync"]), None, "name_lookalike_key")
        elif r == 1: jsonl("neg", R.choice(["created_at", "updated_at", "ship_date"]), dob(), None, "date_not_dob")
        elif r == 2: prose_neg("plain", "The meeting moved to %d:%02d, room %d." % (R.randint(8, 18), R.randint(0, 59), R.randint(100, 999)))
        else: prose_neg("time_colons", "elapsed %02d:%02d:%02d.%03d" % (R.randint(0, 23), R.randint(0, 59), R.randint(0, 59), R.randint(0, 999)))


def hard(n):
    """Look-alikes of the text rules for coordinates, URL hosts and OIDs, and positives that sit
    next to them."""
    for _ in range(n):
        la, lo = coord_pair()
        r = R.randint(0, 7)
        if r == 0: prose_neg("decimal_list", "weights %s, %s, %s" % (la, lo, "%.4f" % R.random()))
        elif r == 1: jsonl("neg", R.choice(["ratio", "range", "scores", "bounds"]), la + "," + lo, None, "coordinate_shaped_wrong_key")
        elif r == 2: query("neg", R.choice(["ratio", "range", "xy"]), la + "," + lo, None, "coordinate_shaped_wrong_key", enc=False)
        elif r == 3: prose_neg("price_pair", "was %d.%02d, now %d.%02d" % (R.randint(1, 80), R.randint(0, 99), R.randint(1, 80), R.randint(0, 99)))
        elif r == 4: prose_neg("version_string", "https://cdn.example.com/lib/%d.%d.%d.%d/app.js" % (R.randint(1, 9), R.randint(0, 20), R.randint(0, 99), R.randint(0, 999)))
        elif r == 5: prose_neg("oid", "attribute oid: 2.5.4.%d" % R.randint(3, 50))
        elif r == 6: prose_neg("version_string", "Mozilla/5.0 AppleWebKit/537.36 Chrome/%d.0.%d.%d Safari/537.36" % (R.randint(90, 130), R.randint(1000, 7000), R.randint(10, 250)))
        else: prose_neg("version_string", "pkg==%d.%d.%d.%d" % (R.randint(1, 9), R.randint(0, 20), R.randint(0, 99), R.randint(0, 999)))
        r = R.randint(0, 2)
        if r == 0: prose("iph", "IP_ADDRESS", ipv4(), "curl -s https://", "/health")
        elif r == 1: emit("geoh", "free_text", Line().add("Meet me at ").add(la + "," + lo, "GEO_COORDINATE").add(", ok?"))
        else: prose("emailh", "EMAIL", '"%s %s"@%s' % (R.choice(FIRST), R.choice(LAST), R.choice(["example.org", "mail.example.de"])), "Reply-To: ", "")


def more(n):
    """Further writings: URIs, numbers as JSON numbers, IDN domains, grouped IMEIs, Basic auth."""
    for _ in range(n):
        r = R.randint(0, 5)
        if r == 0: prose("phonem", "PHONE", "+44" + "20" + digits(8), '<a href="tel:', '">call</a>')
        elif r == 1:
            v = "%d%s%d%s" % (R.randint(2, 9), digits(2), R.randint(2, 9), digits(6))
            emit("phonem", "json", Line().add('{"phone": ').add(v, "PHONE").add(', "ok": true}'))
        elif r == 2: prose("phonem", "PHONE", phone(), "WhatsApp me: ", "")
        elif r == 3: prose("phonem", "PHONE", "+" + R.choice(["44", "49", "33", "61", "81"]) + " " + digits(2) + " " + digits(4) + " " + digits(4), "", " is my number")
        elif r == 4: form("phonem", "phone", "+" + R.choice(["44", "49", "33"]) + " " + digits(3) + " " + digits(7), "PHONE")
        else: prose("phonem", "PHONE", phone(), "Telefon: ", "")

        r = R.randint(0, 4)
        if r == 0: prose("ipm", "IP_ADDRESS", ipv6().split("%")[0], "http://[", "]:8080/")
        elif r == 1: prose("ipm", "IP_ADDRESS", "::FFFF:" + ipv4(), "mapped ", " ok")
        elif r == 2: query("ipm", "ip", ipv6().split("%")[0], "IP_ADDRESS", enc=True)
        elif r == 3: jsonl("ipm", "last_login_ip", ipv4(), "IP_ADDRESS")
        else: header("ipm", "X-Client-IP", ipv6().split("%")[0], "IP_ADDRESS")

        r = R.randint(0, 3)
        if r == 0: prose("emailm", "EMAIL", R.choice(["anna", "li"]) + "@" + R.choice(["xn--mnchen-3ya.de", "company.technology", "EXAMPLE.COM", "sub.domain.example.museum"]), "mail ", " please")
        elif r == 1: prose("emailm", "EMAIL", email(), "(", ")")
        elif r == 2: jsonl("emailm", "cc", email(), "EMAIL")
        else: header("emailm", "X-User-Email", email(), "EMAIL")

        r = R.randint(0, 3)
        if r == 0:
            b = R.choice(["35", "86"]) + digits(12); v = b + luhn_digit(b)
            prose("imeim", "DEVICE_ID", "%s %s %s %s" % (v[:2], v[2:8], v[8:14], v[14]), "IMEI: ", "")
        elif r == 1: header("devm", "X-Device-Id", uuid4(), "DEVICE_ID")
        elif r == 2: jsonl("devm", R.choice(["idfv", "android_id", "deviceId"]), uuid4(), "DEVICE_ID")
        else:
            ln = Line().add('{"card": ').add(card().replace(" ", "").replace("-", ""), "CREDIT_CARD").add('}')
            emit("cardm", "json", ln)

        r = R.randint(0, 3)
        if r == 0: header("authm", "Authorization", base64.b64encode(("%s:%s" % (R.choice(FIRST).lower(), token(12))).encode()).decode(), "AUTH_TOKEN", prefix="Basic ")
        elif r == 1: prose("dobm", "DATE_OF_BIRTH", dob(), R.choice(["DOB: ", "born on ", "Date of birth: "]), "")
        elif r == 2: query("ibanm", "iban", iban().replace(" ", ""), "IBAN")
        else: prose("ssnm", "US_SSN", "%03d %02d %04d" % (R.randint(1, 665), R.randint(1, 99), R.randint(1, 9999)), "SSN ", "")

        r = R.randint(0, 3)
        if r == 0: prose_neg("plus_number", "score +%d points, +%d.%d%%" % (R.randint(1000, 99999), R.randint(1, 9), R.randint(0, 9)))
        elif r == 1: prose_neg("timestamp", "updated at %d by job %d" % (R.randint(1500000000, 1800000000), R.randint(100, 9999)))
        elif r == 2: header("neg", "If-None-Match", '"%032x"' % R.getrandbits(128), None, "hex_hash")
        else: prose_neg("order_number", "Your order %s-%s-%s ships today" % (digits(3), digits(7), digits(7)))


def prose_neg(kind, text):
    emit("neg", "free_text", Line().add(text), kind)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--n", type=int, default=150, help="rounds of positives and of negatives")
    ap.add_argument("--hard", action="store_true", help="add look-alikes of the coordinate, URL-host and OID rules")
    a = ap.parse_args()
    R.seed(a.seed)
    positives(a.n)
    variants(a.n)
    if a.hard:
        hard(a.n)
        more(a.n)
    negatives(a.n)
    for o in OUT:
        sys.stdout.write(json.dumps(o, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
