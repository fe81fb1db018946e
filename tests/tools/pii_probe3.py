#!/usr/bin/env python3
"""pii_probe3.py — a third, independent labelled PII set in the eval format (dev.jsonl's).

  python3 tests/tools/pii_probe3.py [--seed 3] [--n 2000] > /tmp/p3.jsonl
  python3 tests/tools/pii_eval.py --gold /tmp/p3.jsonl --score ../shared/eval/pii/score.py

Angle: the traffic a company actually sends to its vendors. Each line is one request part as
the gateway sees it: a JSON body, a form post, a query target or a header block, shaped like a
payment, CRM, e-mail, SMS, analytics, support-desk, AI-chat or ad-tech API call, in many
locales (EU national phone formats under phone keys, non-English keys, diacritics in names and
keys). Beside the personal data sit the look-alikes such calls are full of: order, invoice and
tracking numbers, SKUs and EANs, timestamps, prices, ISO dates, request-id UUIDs, hashes,
version strings shaped like IPv4, product names next to sku/price, test-mode references.

Labels follow issue #5's rules, not any detector's code: phones need a phone key or a '+'
(or a phone word in prose); a card is a Luhn-valid number with an issuer prefix and length
(test cards included: nothing in the number says "test"; a 16-digit one under a ref/order_id
key too); coordinates under lat/lng/location keys are coordinates whoever stands there (a
warehouse's too); a UUID is a device id only under a device-ish key; a product's name (next to
sku/price, under product_data) is no person, nor is an offer's, a file's or a field's; in a flat
form or query a name next to a sku is a product's unless the list also holds the buyer's
e-mail, phone or IBAN. What the rules leave open (user ids, anonymous ids, names inside free
text, a company's "name", a 12-digit tracking number that passes Luhn) is an ignore span or is
not written, never a label either way.
Negative lines (no entity) carry a negative_kind "p3_..." naming the look-alikes they hold.
Pure stdlib, seeded: the same seed writes the same file (seed 3, 2000 lines: the reported set).
"""
import argparse
import json
import random
import string
import sys
import uuid
from urllib.parse import quote, quote_plus

# ------------------------------------------------------------------------------------------
# Value makers (each returns a string that satisfies, or deliberately fails, its format's rule)


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


def luhn_ok(num):
    s = 0
    for i, ch in enumerate(reversed(num)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        s += d
    return s % 10 == 0


CARD_IIN = [("4", 16), ("4", 16), ("4", 16), ("51", 16), ("53", 16), ("55", 16), ("2221", 16), ("2720", 16),
            ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("3528", 16), ("3589", 16), ("36", 14),
            ("6759", 16), ("62", 16), ("4", 19), ("2200", 16)]
TEST_CARDS = ["4242424242424242", "4000056655665556", "5555555555554444", "2223003122003222",
              "378282246310005", "6011111111111117", "3566002020360505", "4111111111111111",
              "5105105105105100", "4012888888881881"]


def card(r, luhn=True):
    pre, ln = r.choice(CARD_IIN)
    body = pre + "".join(r.choice(string.digits) for _ in range(ln - len(pre) - 1))
    d = luhn_digit(body)
    if not luhn:
        d = str((int(d) + r.randint(1, 9)) % 10)
    return body + d


def card_like(num):
    """Luhn-valid with an issuer prefix and length (the card rule), as far as this file's IIN table goes."""
    if not luhn_ok(num):
        return False
    for pre, ln in CARD_IIN + [("5", 12), ("6", 12), ("5", 13), ("6", 13), ("5", 14), ("6", 14), ("5", 15), ("6", 15),
                               ("3", 14), ("1", 15), ("8", 16), ("3", 15)]:
        if num.startswith(pre) and len(num) == ln:
            return True
    return False


def group_card(r, num):
    style = r.random()
    if len(num) == 15:
        return num if style < 0.5 else "%s %s %s" % (num[:4], num[4:10], num[10:])
    if len(num) == 14:
        return num if style < 0.5 else "%s %s %s" % (num[:4], num[4:10], num[10:])
    if style < 0.4:
        return num
    sep = " " if style < 0.75 else "-"
    return sep.join(num[i:i + 4] for i in range(0, len(num), 4))


IBAN_FMT = {  # country: BBAN pattern (n digit, a upper letter, c alnum upper)
    "DE": "n" * 18, "FR": "n" * 10 + "c" * 11 + "nn", "ES": "n" * 20, "IT": "a" + "n" * 10 + "c" * 12,
    "NL": "aaaa" + "n" * 10, "BE": "n" * 12, "AT": "n" * 16, "PL": "n" * 24, "PT": "n" * 21,
    "IE": "aaaa" + "n" * 14, "FI": "n" * 14, "SE": "n" * 20, "DK": "n" * 14, "LU": "nnn" + "c" * 13,
    "GB": "aaaa" + "n" * 14, "CH": "n" * 5 + "c" * 12, "CZ": "n" * 20, "HU": "n" * 24, "RO": "aaaa" + "c" * 16,
    "GR": "n" * 7 + "c" * 16, "HR": "n" * 17, "SI": "n" * 15, "SK": "n" * 20, "LT": "n" * 16, "EE": "n" * 16,
    "NO": "n" * 11, "MT": "aaaa" + "n" * 5 + "c" * 18, "BG": "aaaa" + "n" * 6 + "c" * 8,
}


def iban(r, valid=True, cc=None):
    cc = cc or r.choice(sorted(IBAN_FMT))
    pools = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}
    bban = "".join(r.choice(pools[k]) for k in IBAN_FMT[cc])
    num = int("".join(str(int(ch, 36)) for ch in bban + cc + "00"))
    chk = 98 - num % 97
    if not valid:
        chk = (chk + r.randint(1, 90)) % 97 + 2 if chk != 2 else 3
        chk = min(chk, 98)
    s = cc + "%02d" % chk + bban
    if not valid and iban_ok(s):
        s = s[:-1] + str((int(s[-1], 36) + 1) % 10)
    return s


def iban_ok(s):
    s = s.replace(" ", "")
    t = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in t)) % 97 == 1


def iban_print(r, s):
    if r.random() < 0.55:
        return " ".join(s[i:i + 4] for i in range(0, len(s), 4))
    return s


def ssn(r, valid=True):
    if valid:
        while True:
            a = r.randint(1, 899)
            if a != 666:
                break
        g, s_ = r.randint(1, 99), r.randint(1, 9999)
    else:
        kind = r.randrange(4)
        a = [0, 666, r.randint(900, 999), r.randint(1, 665)][kind]
        g = 0 if kind == 3 else r.randint(1, 99)
        s_ = r.randint(1, 9999) if kind != 3 or r.random() < 0.5 else 0
    return "%03d-%02d-%04d" % (a, g, s_)


NINO_A = "ABCEGHJKLMNOPRSTWXYZ"
NINO_B = "ABCEGHJKLMNPRSTWXYZ"


def nino(r, spaced=False):
    while True:
        p = r.choice(NINO_A) + r.choice(NINO_B)
        if p not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
            break
    d = "%06d" % r.randint(0, 999999)
    s = r.choice("ABCD")
    if spaced:
        return "%s %s %s %s %s" % (p, d[:2], d[2:4], d[4:], s)
    return p + d + s


def hexs(r, n, upper=False):
    s = "".join(r.choice("0123456789abcdef") for _ in range(n))
    return s.upper() if upper else s


def uid(r):
    return str(uuid.UUID(int=r.getrandbits(128), version=4))


def b64u(r, n):
    return "".join(r.choice(string.ascii_letters + string.digits + "-_") for _ in range(n))


def alnum(r, n):
    return "".join(r.choice(string.ascii_letters + string.digits) for _ in range(n))


def jwt(r, email=None):
    import base64
    enc = lambda o: base64.urlsafe_b64encode(json.dumps(o, separators=(",", ":")).encode()).rstrip(b"=").decode()
    hdr = enc({"alg": r.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"})
    body = {"sub": str(r.randint(10 ** 5, 10 ** 9)), "iat": 1700000000 + r.randint(0, 10 ** 7)}
    if email:
        body["email"] = email
    return "%s.%s.%s" % (hdr, enc(body), b64u(r, 43))


def api_key(r):
    k = r.randrange(7)
    if k == 0:
        return "sk_live_" + alnum(r, 24)
    if k == 1:
        return "AKIA" + "".join(r.choice(string.ascii_uppercase + "234567") for _ in range(16))
    if k == 2:
        return "ghp_" + alnum(r, 36)
    if k == 3:
        return "xoxb-%d-%d-%s" % (r.randint(10 ** 11, 10 ** 12), r.randint(10 ** 11, 10 ** 12), alnum(r, 24))
    if k == 4:
        return "AIza" + b64u(r, 35)
    if k == 5:
        return "SG." + b64u(r, 22) + "." + b64u(r, 43)
    return hexs(r, 32)


def ipv4(r):
    while True:
        a = r.choice([r.randint(1, 223), 10, 172, 192, 81, 85, 92, 145, 185, 213, 217])
        ip = "%d.%d.%d.%d" % (a, r.randint(0, 255), r.randint(0, 255), r.randint(1, 254))
        if not ip.startswith("127."):
            return ip


def ipv6(r):
    k = r.randrange(4)
    if k == 0:
        return "2001:db8:%x:%x::%x" % (r.randint(1, 0xffff), r.randint(1, 0xffff), r.randint(1, 0xffff))
    if k == 1:
        return ":".join("%x" % r.randint(0, 0xffff) for _ in range(8))
    if k == 2:
        return "2a02:%x:%x:%x:%x:%x:%x:%x" % tuple(r.randint(0, 0xffff) for _ in range(7))
    return "fe80::%x:%x:%x:%x" % tuple(r.randint(1, 0xffff) for _ in range(4))


def mac(r):
    sep = r.choice([":", "-"])
    return sep.join("%02X" % r.randint(0, 255) if r.random() < 0.5 else "%02x" % r.randint(0, 255) for _ in range(6))


def imei(r):
    body = r.choice(["35", "86", "01", "49", "35"]) + "".join(r.choice(string.digits) for _ in range(12))
    return body + luhn_digit(body)


# People, in many locales (diacritics kept).
FIRST = ["Zoé", "Hélène", "François", "Jürgen", "Björn", "Søren", "Łukasz", "Małgorzata", "José", "Inés",
         "Núria", "João", "Conceição", "Ana", "Giulia", "Niccolò", "Renée", "Anaïs", "Mehmet", "Ayşe", "Dorottya",
         "Tomáš", "Jiří", "Eoin", "Siobhán", "Pieter", "Sanne", "Lars", "Ingrid", "Mikael", "Emma", "Oliver",
         "Priya", "Chloé", "Mateusz", "Ágnes", "Kristóf", "Ioana", "Andrés", "Camille", "Léa", "Maximilian"]
LAST = ["Dubois", "Müller", "Weiß", "Schäfer", "García", "Fernández", "Núñez", "Rossi", "Bianchi", "Esposito",
        "Nowak", "Wiśniewski", "Kowalczyk", "Jansen", "de Vries", "van den Berg", "Öztürk", "Yılmaz", "Nagy",
        "Szabó", "Novák", "Dvořák", "O'Brien", "Ó Súilleabháin", "Lindqvist", "Håkansson", "Nielsen", "Sørensen",
        "Silva", "Gonçalves", "Popescu", "Ionescu", "Lefèvre", "Rémy", "Martin", "Bernard", "Smith", "Patel"]
DOMAINS = ["gmail.com", "outlook.fr", "web.de", "gmx.at", "libero.it", "orange.fr", "wp.pl", "seznam.cz",
           "telia.se", "kpnmail.nl", "sapo.pt", "yahoo.es", "proton.me", "acme-gmbh.de", "example.co.uk",
           "posteo.de", "icloud.com", "free.fr", "t-online.de", "firma.com.pl", "bolt.eu"]
ASCII = str.maketrans({"é": "e", "è": "e", "ë": "e", "ü": "u", "ö": "o", "ä": "a", "ß": "ss", "ø": "o", "å": "a",
                       "ł": "l", "ł": "l", "ń": "n", "ś": "s", "ó": "o", "í": "i", "ú": "u", "á": "a", "ã": "a",
                       "ç": "c", "ò": "o", "ï": "i", "ş": "s", "ı": "i", "ř": "r", "ý": "y", "č": "c", "Ł": "L",
                       "Á": "A", "Ö": "O", "Ó": "O", "É": "E", "Ş": "S", "'": "", " ": "", "ğ": "g", "ő": "o"})


def person(r):
    return r.choice(FIRST), r.choice(LAST)


def email_of(r, fn, ln):
    f, l = fn.translate(ASCII).lower(), ln.translate(ASCII).lower()
    local = r.choice(["%s.%s" % (f, l), "%s%s" % (f[0], l), "%s_%s%d" % (f, l, r.randint(1, 99)), "%s+shop" % f,
                      "%s.%s" % (l, f[0])])
    return "%s@%s" % (local, r.choice(DOMAINS))


# National phone formats (written as their owners write them) and their country codes.
def phone(r, intl=None):
    cc = r.choice(["FR", "DE", "ES", "IT", "NL", "PL", "UK", "SE", "AT", "BE", "PT", "IE", "CZ", "CH", "DK", "US",
                   "FI", "RO"])
    d = lambda n: "".join(r.choice(string.digits) for _ in range(n))
    nat = {
        "FR": lambda: "0%d %s %s %s %s" % (r.choice([1, 6, 7, 9]), d(2), d(2), d(2), d(2)),
        "DE": lambda: r.choice(["0%d %s" % (r.choice([151, 160, 171, 176]), d(7)), "030 %s" % d(8),
                                "(089) %s-%s" % (d(4), d(3)), "0221/%s" % d(7)]),
        "ES": lambda: "%d%s %s %s %s" % (r.choice([6, 7, 9]), d(2), d(2), d(2), d(2)),
        "IT": lambda: r.choice(["3%s %s %s" % (d(2), d(3), d(4)), "06 %s %s" % (d(4), d(4))]),
        "NL": lambda: r.choice(["06-%s" % d(8), "020 %s %s" % (d(3), d(4))]),
        "PL": lambda: "%d%s %s %s" % (r.choice([5, 6, 7, 8]), d(2), d(3), d(3)),
        "UK": lambda: r.choice(["07%s %s" % (d(3), d(6)), "020 7%s %s" % (d(3), d(4))]),
        "SE": lambda: "07%d-%s %s %s" % (r.randint(0, 9), d(3), d(2), d(2)),
        "AT": lambda: "0664 %s" % d(7),
        "BE": lambda: "04%s %s %s %s" % (d(2), d(2), d(2), d(2)),
        "PT": lambda: "9%s %s %s" % (d(2), d(3), d(3)),
        "IE": lambda: "08%d %s %s" % (r.randint(3, 9), d(3), d(4)),
        "CZ": lambda: "%d%s %s %s" % (r.choice([6, 7]), d(2), d(3), d(3)),
        "CH": lambda: "07%d %s %s %s" % (r.choice([6, 7, 8, 9]), d(3), d(2), d(2)),
        "DK": lambda: "%s %s %s %s" % (d(2), d(2), d(2), d(2)),
        "US": lambda: r.choice(["(%d) %s-%s" % (r.randint(201, 989), d(3), d(4)), "%d-%s-%s" % (r.randint(201, 989), d(3), d(4))]),
        "FI": lambda: "04%d %s %s" % (r.randint(0, 9), d(3), d(4)),
        "RO": lambda: "07%s %s %s" % (d(2), d(3), d(3)),
    }
    code = {"FR": "33", "DE": "49", "ES": "34", "IT": "39", "NL": "31", "PL": "48", "UK": "44", "SE": "46",
            "AT": "43", "BE": "32", "PT": "351", "IE": "353", "CZ": "420", "CH": "41", "DK": "45", "US": "1",
            "FI": "358", "RO": "40"}[cc]
    n = nat[cc]()
    if intl is None:
        intl = r.random() < 0.45
    if not intl:
        return n
    digits = "".join(ch for ch in n if ch.isdigit())
    if cc not in ("IT", "US", "DK", "ES", "PL", "PT", "CZ"):
        digits = digits[1:]  # trunk 0
    if r.random() < 0.5:
        return "+" + code + digits
    # grouped
    g = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    return "+%s %s" % (code, " ".join(g))


def dob(r, style=None):
    y, m, d_ = r.randint(1940, 2006), r.randint(1, 12), r.randint(1, 28)
    style = style if style is not None else r.randrange(4)
    return ["%04d-%02d-%02d" % (y, m, d_), "%02d/%02d/%04d" % (d_, m, y), "%02d.%02d.%04d" % (d_, m, y),
            "%04d%02d%02d" % (y, m, d_)][style]


def iso_ts(r):
    return "2024-%02d-%02dT%02d:%02d:%02d.%03dZ" % (r.randint(1, 12), r.randint(1, 28), r.randint(0, 23),
                                                   r.randint(0, 59), r.randint(0, 59), r.randint(0, 999))


def unix_ts(r, ms=False):
    t = r.randint(1690000000, 1740000000)
    return t * 1000 + r.randint(0, 999) if ms else t


def order_no(r):
    k = r.randrange(5)
    if k == 0:
        return "%d" % r.randint(10 ** 9, 10 ** 10 - 1)
    if k == 1:
        n = card(r, luhn=False)  # a 13-19 digit run that fails Luhn
        return n
    if k == 2:
        return "ORD-%d-%05d" % (r.randint(2019, 2025), r.randint(0, 99999))
    if k == 3:
        return "#%d" % r.randint(1000, 999999)
    return "%03d-%07d-%07d" % (r.randint(100, 999), r.randint(0, 10 ** 7 - 1), r.randint(0, 10 ** 7 - 1))  # marketplace


def tracking(r):
    k = r.randrange(4)
    if k == 0:
        return "1Z" + "".join(r.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    if k == 1:
        # FedEx-style: 12 digits. One that passes Luhn with an issuer prefix is a card by the rule's
        # letter and a tracking number by its label; the rules leave it open, so none is written.
        while True:
            t = "%012d" % r.randint(0, 10 ** 12 - 1)
            if not card_like(t):
                return t
    if k == 2:
        return "9400 1%03d %04d %04d %04d %02d" % (r.randint(0, 999), r.randint(0, 9999), r.randint(0, 9999),
                                                    r.randint(0, 9999), r.randint(0, 99))
    return "JJD%018d" % r.randint(0, 10 ** 18 - 1)  # DHL


def ean13(r):
    body = r.choice(["400", "300", "800", "590", "871", "500"]) + "".join(r.choice(string.digits) for _ in range(9))
    s = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))
    return body + str((10 - s % 10) % 10)


def version_quad(r):
    return "%d.%d.%d.%d" % (r.randint(1, 30), r.randint(0, 20), r.randint(0, 200), r.randint(1, 250))


def sku(r):
    return r.choice(["%s-%04d" % ("".join(r.choice(string.ascii_uppercase) for _ in range(3)), r.randint(0, 9999)),
                     "%d-%02d" % (r.randint(10000, 99999), r.randint(0, 99)),
                     "SKU%07d" % r.randint(0, 9999999)])


PRODUCTS = ["Chaise Pliante", "Lampe Berger", "Kaffeemaschine Deluxe", "Zapatillas Running", "Borsa Tote",
            "Monopoly: Edition Paris", "Stołek Barowy", "Tasse Émaillée", "Cafetière Italienne", "Mochila Urbana",
            "Olivia Wrap Dress", "Harper Sofa", "Emma Mattress", "Jules Armchair", "Lucia Pendant Lamp",
            "Oscar Dog Bed", "Margot Linen Shirt", "Hugo Boss Sneaker", "Léon Desk", "Greta Vase"]


def money(r):
    return round(r.uniform(1, 2500), 2)


# ------------------------------------------------------------------------------------------
# Labelled text builders

class Lab:
    """A value with a label: type (gold entity), or ign (ignore span)."""

    def __init__(self, value, type=None, ign=None):
        self.value, self.type, self.ign = value, type, ign


class Prose:
    """A string made of plain pieces and (type, text) / Lab pieces, labelled per piece."""

    def __init__(self, *parts):
        self.parts = parts


def pieces(v):
    """The (text, type, ign) pieces of a value."""
    if isinstance(v, Prose):
        out = []
        for p in v.parts:
            if isinstance(p, Lab):
                out.append((p.value, p.type, p.ign))
            else:
                out.append((p, None, None))
        return out
    if isinstance(v, Lab):
        return [(v.value, v.type, v.ign)]
    return [(v, None, None)]


class Out:
    def __init__(self):
        self.buf, self.ents, self.ign = [], [], []
        self.pos = 0

    def put(self, s, type=None, ign=None):
        if type:
            self.ents.append({"type": type, "start": self.pos, "end": self.pos + len(s)})
        if ign:
            self.ign.append({"type": ign, "start": self.pos, "end": self.pos + len(s)})
        self.buf.append(s)
        self.pos += len(s)

    def text(self):
        return "".join(self.buf)


def emit_json(o, v, r, indent):
    if isinstance(v, dict):
        o.put("{")
        first = True
        for k, x in v.items():
            if not first:
                o.put(", " if not indent else ",")
            first = False
            o.put(json.dumps(k, ensure_ascii=False) + (": " if not indent else ":"))
            emit_json(o, x, r, indent)
        o.put("}")
    elif isinstance(v, list):
        o.put("[")
        for i, x in enumerate(v):
            if i:
                o.put(", " if not indent else ",")
            emit_json(o, x, r, indent)
        o.put("]")
    elif isinstance(v, Lab) and not isinstance(v.value, str):
        o.put(json.dumps(v.value), v.type, v.ign)
    elif isinstance(v, (str, Lab, Prose)):
        o.put('"')
        for text, t, ig in pieces(v):
            o.put(json.dumps(text, ensure_ascii=False)[1:-1], t, ig)
        o.put('"')
    else:
        o.put(json.dumps(v))


def emit_params(o, params, form):
    enc = (lambda s: quote_plus(s, safe="")) if form else (lambda s: quote(s, safe=""))
    for i, (k, v) in enumerate(params):
        if i:
            o.put("&")
        o.put(enc(k) + "=")
        if isinstance(v, (int, float)):
            v = str(v)
        for text, t, ig in pieces(v):
            o.put(enc(text), t, ig)


def emit_headers(o, hdrs):
    for k, v in hdrs:
        o.put(k + ": ")
        for text, t, ig in pieces(v):
            o.put(text, t, ig)
        o.put("\r\n")


# ------------------------------------------------------------------------------------------
# Scenarios: each returns (context, payload, negative_kind, note). Payload: dict/list for json,
# [(k, v)] for form, (path, [(k, v)]) for query, [(name, value)] for headers.

L = Lab


def P(*a):
    return Prose(*a)


def sc_payment_json(r):
    fn, ln = person(r)
    num = r.choice(TEST_CARDS) if r.random() < 0.2 else card(r)
    body = {
        "amount": int(money(r) * 100), "currency": r.choice(["eur", "pln", "sek", "chf", "gbp"]),
        "order_id": order_no(r), "idempotency_key": uid(r),
        "payment_method": {"type": "card", "card": {"number": L(group_card(r, num), "CREDIT_CARD"),
                                                    "exp_month": r.randint(1, 12), "exp_year": r.randint(2025, 2031),
                                                    "cvc": "%03d" % r.randint(0, 999)},
                           "billing_details": {"name": L("%s %s" % (fn, ln), "PERSON"),
                                               "email": L(email_of(r, fn, ln), "EMAIL"),
                                               "address": {"line1": L("%d Rue de la Paix" % r.randint(1, 99), ign="ADDRESS"),
                                                           "postal_code": "%05d" % r.randint(1000, 99999),
                                                           "country": r.choice(["FR", "DE", "ES", "IT"])}}},
        "metadata": {"invoice_number": "INV-%d-%04d" % (r.randint(2023, 2025), r.randint(1, 9999)),
                     "cart_total": "%.2f" % money(r)},
        "created": unix_ts(r),
    }
    return "json", body, None


def sc_payment_form(r):
    fn, ln = person(r)
    num = r.choice(TEST_CARDS) if r.random() < 0.25 else card(r)
    params = [("amount", str(r.randint(100, 999999))), ("currency", "eur"),
              ("card[number]", L(num, "CREDIT_CARD")), ("card[exp_month]", str(r.randint(1, 12))),
              ("card[exp_year]", str(r.randint(2025, 2031))), ("card[cvc]", "%03d" % r.randint(0, 999)),
              ("billing_details[name]", L("%s %s" % (fn, ln), "PERSON")),
              ("billing_details[phone]", L(phone(r, intl=True), "PHONE")),
              ("metadata[order_id]", order_no(r)), ("description", "Commande %s" % order_no(r)),
              ("receipt_email", L(email_of(r, fn, ln), "EMAIL"))]
    r.shuffle(params)
    return "form", params, None


def sc_sepa_mandate(r):
    fn, ln = person(r)
    ib = iban(r)
    body = {"mandate": {"reference": "MD-%08d" % r.randint(0, 10 ** 8), "scheme": "sepa_core",
                        "signed_at": iso_ts(r)},
            "customer": {"given_name": L(fn, "PERSON"), "family_name": L(ln, "PERSON"),
                         "email": L(email_of(r, fn, ln), "EMAIL"),
                         "language": r.choice(["fr", "de", "es", "it", "nl"])},
            "customer_bank_account": {"iban": L(iban_print(r, ib), "IBAN"),
                                      "account_holder_name": L("%s %s" % (fn, ln), "PERSON"),
                                      "bank_code": "%08d" % r.randint(0, 10 ** 8)},
            "amount": money(r), "charge_date": "2024-%02d-%02d" % (r.randint(1, 12), r.randint(1, 28))}
    return "json", body, None


def sc_crm_contact(r):
    fn, ln = person(r)
    loc = r.randrange(6)
    keys = [("first_name", "last_name", "email", "phone", "date_of_birth"),
            ("prénom", "nom", "courriel", "téléphone", "date_de_naissance"),
            ("nombre", "apellidos", "correo", "teléfono", "fecha_de_nacimiento"),
            ("vorname", "nachname", "e_mail", "telefonnummer", "geburtsdatum"),
            ("nome", "cognome", "email", "cellulare", "data_di_nascita"),
            ("imię", "nazwisko", "email", "telefon_komórkowy", "data_urodzenia")][loc]
    ph = phone(r)
    body = {"properties": {keys[0]: L(fn, "PERSON"), keys[1]: L(ln, "PERSON"),
                           keys[2]: L(email_of(r, fn, ln), "EMAIL"), keys[3]: L(ph, "PHONE"),
                           keys[4]: L(dob(r, r.choice([0, 1, 2])), "DATE_OF_BIRTH"),
                           "lifecyclestage": r.choice(["lead", "customer", "subscriber"]),
                           "hs_lead_status": "NEW", "company": r.choice(["Acme GmbH", "Boulangerie Dupont SARL"]),
                           "createdate": iso_ts(r), "num_orders": r.randint(0, 40)}}
    return "json", body, None


def sc_crm_search_query(r):
    fn, ln = person(r)
    path = "/crm/v3/objects/contacts/search"
    params = [("email", L(email_of(r, fn, ln), "EMAIL")), ("limit", str(r.choice([10, 50, 100]))),
              ("after", str(r.randint(0, 10 ** 6))), ("properties", "firstname,lastname,phone"),
              ("archived", "false")]
    return "query", (path, params), None


def sc_email_send(r):
    fn, ln = person(r)
    fn2, ln2 = person(r)
    body = {"personalizations": [{"to": [{"email": L(email_of(r, fn, ln), "EMAIL"),
                                          "name": L("%s %s" % (fn, ln), "PERSON")}],
                                  "dynamic_template_data": {"order_number": order_no(r),
                                                            "tracking_number": tracking(r),
                                                            "total": "%.2f €" % money(r),
                                                            "delivery_date": "2024-%02d-%02d" % (r.randint(1, 12), r.randint(1, 28))}}],
            "from": {"email": L("noreply@shop.example.eu", "EMAIL"), "name": L("Boutique Example", ign="PERSON")},
            "reply_to": {"email": L(email_of(r, fn2, ln2), "EMAIL")},
            "template_id": "d-" + hexs(r, 32), "categories": ["order-confirmation"],
            "send_at": unix_ts(r)}
    return "json", body, None


def sc_sms_send(r):
    fn, ln = person(r)
    form = r.random() < 0.5
    to = phone(r, intl=True)
    code = "%06d" % r.randint(0, 999999)
    msg = P("Bonjour ", L(fn, ign="PERSON"), ", votre code est %s. Commande %s expédiée, suivi %s." % (code, order_no(r), tracking(r)))
    if form:
        params = [("To", L(to, "PHONE")), ("From", "BoutiqueEx"), ("Body", msg),
                  ("StatusCallback", "https://hooks.example.eu/sms/%s" % uid(r)), ("ValidityPeriod", "3600")]
        return "form", params, None
    body = {"to": L(to, "PHONE"), "sender": "BoutiqueEx", "text": msg, "reference": uid(r),
            "scheduled_at": iso_ts(r), "callback_url": "https://hooks.example.eu/sms"}
    return "json", body, None


def sc_analytics_track(r):
    fn, ln = person(r)
    prods = []
    for _ in range(r.randint(1, 3)):
        prods.append({"product_id": "%d" % r.randint(10 ** 5, 10 ** 7), "sku": sku(r), "name": r.choice(PRODUCTS),
                      "price": money(r), "quantity": r.randint(1, 4),
                      "category": r.choice(["Maison", "Garten", "Ropa"])})
    body = {"type": "track", "event": "Order Completed", "userId": L("usr_%s" % alnum(r, 10), ign="USER_ID"),
            "anonymousId": L(uid(r), ign="DEVICE_ID"), "messageId": uid(r), "timestamp": iso_ts(r),
            "properties": {"order_id": order_no(r), "total": money(r), "revenue": money(r), "currency": "EUR",
                           "products": prods},
            "context": {"ip": L(ipv4(r), "IP_ADDRESS"), "locale": r.choice(["fr-FR", "de-DE", "pl-PL", "es-ES"]),
                        "library": {"name": "analytics.js", "version": version_quad(r)},
                        "device": {"id": L(uid(r), "DEVICE_ID"), "advertisingId": L(uid(r).upper(), "DEVICE_ID"),
                                   "manufacturer": "Apple", "model": "iPhone14,2", "type": "ios"},
                        "os": {"name": "iOS", "version": "17.1.2"},
                        "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"}}
    return "json", body, None


def sc_analytics_product_only(r):
    """A catalogue sync: product names beside sku/price in every language; nothing personal."""
    loc = r.randrange(5)
    nk, pk, qk, rk = [("name", "price", "quantity", "sku"), ("nom", "prix", "quantité", "référence"),
                      ("nombre", "precio", "cantidad", "sku"), ("name", "preis", "menge", "artikelnummer"),
                      ("nome", "prezzo", "quantità", "codice")][loc]
    items = []
    for _ in range(r.randint(1, 4)):
        it = {nk: r.choice(PRODUCTS), rk: sku(r), pk: money(r), qk: r.randint(1, 9), "updated_at": iso_ts(r)}
        if r.random() < 0.5:
            it["ean"] = ean13(r)
        items.append(it)
    body = {"line_items": items, "warehouse_code": "WH-%02d" % r.randint(1, 40), "version": version_quad(r)}
    return "json", body, "p3_product_names_by_sku_price"


def sc_product_form(r):
    loc = r.randrange(4)
    nk, pk, sk = [("name", "price", "sku"), ("nom", "prix", "sku"), ("nombre", "precio", "sku"),
                  ("nome", "prezzo", "sku")][loc]
    params = [(nk, r.choice(PRODUCTS)), (sk, sku(r)), (pk, "%.2f" % money(r)), ("stock", str(r.randint(0, 500))),
              ("ean", ean13(r))]
    r.shuffle(params)
    if r.random() < 0.5:
        return "form", params, "p3_form_product_name_by_sku"
    return "query", ("/api/catalog/items", params), "p3_query_product_name_by_sku"


def sc_support_ticket(r):
    fn, ln = person(r)
    ph = phone(r, intl=True)
    em = email_of(r, fn, ln)
    ib = iban(r)
    k = r.randrange(4)
    if k == 0:
        comment = P("Bonjour, je suis ", L("%s %s" % (fn, ln), ign="PERSON"), ", ma commande ", order_no(r),
                    " n'est jamais arrivée (suivi ", tracking(r), "). Rappelez-moi au ", L(ph, "PHONE"), " svp.")
    elif k == 1:
        comment = P("Hallo, bitte erstatten Sie den Betrag von %.2f EUR auf mein Konto " % money(r),
                    L(iban_print(r, ib), "IBAN"), ". Rechnungsnummer ", "RE-%d" % r.randint(10 ** 5, 10 ** 7),
                    ". Gruß, ", L(fn, ign="PERSON"))
    elif k == 2:
        comment = P("Hi team, the app crashes on version ", version_quad(r), " after login. My email is ",
                    L(em, "EMAIL"), " and my device IMEI is ", L(imei(r), "DEVICE_ID"), ". Ticket ref ",
                    "%d" % r.randint(10 ** 6, 10 ** 8), ".")
    else:
        comment = P("Hola, pagué con la tarjeta ", L(group_card(r, card(r)), "CREDIT_CARD"),
                    " pero el pedido ", order_no(r), " sigue pendiente. Teléfono: ", L(ph, "PHONE"))
    body = {"ticket": {"subject": r.choice(["Commande non reçue", "Erstattung", "App crash", "Pedido pendiente"]),
                       "comment": {"body": comment, "public": False},
                       "priority": "normal", "tags": ["web", "eu"],
                       "requester": {"name": L("%s %s" % (fn, ln), "PERSON"), "email": L(em, "EMAIL"),
                                     "locale_id": r.randint(1, 1200)},
                       "custom_fields": [{"id": r.randint(10 ** 6, 10 ** 8), "value": order_no(r)}],
                       "external_id": uid(r)}}
    return "json", body, None


def sc_ai_chat(r):
    fn, ln = person(r)
    em = email_of(r, fn, ln)
    k = r.randrange(4)
    if k == 0:
        user = P("Draft a polite reply to ", L("%s %s" % (fn, ln), ign="PERSON"), " (", L(em, "EMAIL"),
                 ") about order ", order_no(r), ", which shipped with tracking ", tracking(r), ".")
    elif k == 1:
        user = P("Summarise: customer called from ", L(phone(r, intl=True), "PHONE"), " on ", iso_ts(r),
                 " asking to change the IBAN to ", L(iban_print(r, iban(r)), "IBAN"), ".")
    elif k == 2:
        user = P("Our API returns 502 from ", L("10.0.%d.%d" % (r.randint(0, 255), r.randint(1, 254)), "IP_ADDRESS"),
                 "? No, the log says upstream ", L(ipv4(r), "IP_ADDRESS"), " timed out after 30s. Library v", version_quad(r), ".")
    else:
        user = P("Translate to German: 'Your package %s will arrive on %s. Total: %.2f EUR.'" %
                 (tracking(r), "2024-%02d-%02d" % (r.randint(1, 12), r.randint(1, 28)), money(r)))
    body = {"model": r.choice(["gpt-4o-mini", "claude-3-5-sonnet-20241022", "mistral-large-2411"]),
            "temperature": round(r.uniform(0, 1), 2), "max_tokens": r.choice([256, 1024, 4096]),
            "messages": [{"role": "system", "content": "You are a helpful support assistant for an EU retailer."},
                         {"role": "user", "content": user}],
            "metadata": {"request_id": uid(r), "trace_id": hexs(r, 32)}}
    return "json", body, None


def sc_ai_chat_neg(r):
    user = P("Compare SKU %s (%.2f EUR) and SKU %s (%.2f EUR); which ships faster? Order %s placed %s, "
             "release %s of the app." % (sku(r), money(r), sku(r), money(r), order_no(r), iso_ts(r), version_quad(r)))
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": user}],
            "user": hexs(r, 64), "seed": r.randint(0, 2 ** 31), "request_id": uid(r)}
    return "json", body, "p3_ai_chat_lookalikes"


def sc_openrtb(r):
    lat, lon = round(r.uniform(36, 60), 4), round(r.uniform(-9, 28), 4)
    body = {"id": uid(r), "imp": [{"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": round(r.uniform(0.1, 3), 2),
                                   "tagid": "%d" % r.randint(10 ** 5, 10 ** 7)}],
            "site": {"domain": "news.example.fr", "page": "https://news.example.fr/article/%d" % r.randint(1, 10 ** 6)},
            "device": {"ua": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.210 Mobile Safari/537.36",
                       "ip": L(ipv4(r), "IP_ADDRESS"), "ifa": L(uid(r), "DEVICE_ID"),
                       "geo": {"lat": L(lat, "GEO_COORDINATE"), "lon": L(lon, "GEO_COORDINATE"), "type": 2,
                               "country": "FRA"},
                       "make": "Google", "model": "Pixel 8", "os": "Android", "osv": "14.0.0"},
            "user": {"id": L(hexs(r, 32), ign="USER_ID"), "buyeruid": L(alnum(r, 22), ign="USER_ID")},
            "regs": {"ext": {"gdpr": 1}}, "tmax": r.choice([120, 200, 300])}
    return "json", body, None


def sc_pixel_query(r):
    params = [("v", "1"), ("tid", "G-%s" % "".join(r.choice(string.ascii_uppercase + string.digits) for _ in range(10))),
              ("cid", L("%d.%d" % (r.randint(10 ** 8, 10 ** 9), unix_ts(r)), ign="DEVICE_ID")),
              ("uip", L(ipv4(r), "IP_ADDRESS")), ("t", "event"), ("ec", "checkout"),
              ("ev", str(r.randint(1, 999))), ("z", str(r.randint(10 ** 8, 10 ** 10))),
              ("ts", str(unix_ts(r, ms=True))), ("idfa", L(uid(r).upper(), "DEVICE_ID")),
              ("gdpr", "1"), ("app_ver", version_quad(r))]
    r.shuffle(params)
    return "query", ("/collect", params), None


def sc_pixel_neg(r):
    params = [("v", "2"), ("tid", "G-%s" % alnum(r, 10).upper()), ("t", "pageview"),
              ("dp", "/produits/%s" % sku(r).lower()), ("z", str(r.randint(10 ** 8, 10 ** 10))),
              ("ts", str(unix_ts(r, ms=True))), ("sdk_version", version_quad(r)), ("fw", version_quad(r)),
              ("req_id", uid(r)), ("price", "%.2f" % money(r)), ("order_id", order_no(r)),
              ("sr", "%dx%d" % (r.choice([1920, 1440, 390]), r.choice([1080, 900, 844])))]
    r.shuffle(params)
    return "query", ("/collect", params), "p3_pixel_ids_versions_timestamps"


def sc_headers(r):
    fn, ln = person(r)
    hdrs = [("Host", r.choice(["api.stripe.com", "api.hubapi.com", "api.openai.com", "api.sendgrid.com"])),
            ("User-Agent", "acme-billing/%s (+https://acme.example)" % version_quad(r)),
            ("Accept", "application/json"), ("X-Request-Id", uid(r)), ("Idempotency-Key", uid(r))]
    k = r.randrange(4)
    if k == 0:
        hdrs.append(("Authorization", P("Bearer ", L(api_key(r), "AUTH_TOKEN"))))
    elif k == 1:
        hdrs.append(("Authorization", P("Bearer ", L(jwt(r, email_of(r, fn, ln)), "AUTH_TOKEN"))))
    elif k == 2:
        hdrs.append(("X-Api-Key", L(api_key(r), "AUTH_TOKEN")))
    else:
        hdrs.append(("Cookie", P("lang=fr; theme=dark; session_id=", L(b64u(r, 40), "AUTH_TOKEN"),
                                 "; _ga=GA1.2.%d.%d" % (r.randint(10 ** 8, 10 ** 9), unix_ts(r)))))
    if r.random() < 0.6:
        hdrs.append(("X-Forwarded-For", P(L(ipv4(r), "IP_ADDRESS"), ", ", L(r.choice([ipv4(r), ipv6(r)]), "IP_ADDRESS"))))
    if r.random() < 0.3:
        hdrs.append(("X-Device-Id", L(r.choice([uid(r), mac(r)]), "DEVICE_ID")))
    hdrs += [("X-Client-Version", version_quad(r)), ("Stripe-Version", "2024-06-20"),
             ("If-None-Match", 'W/"%s"' % hexs(r, 32)), ("X-Amzn-Trace-Id", "Root=1-%s-%s" % (hexs(r, 8), hexs(r, 24)))]
    r.shuffle(hdrs)
    return "headers", hdrs, None


def sc_headers_neg(r):
    hdrs = [("Host", "api.example-vendor.eu"), ("User-Agent", "curl/8.5.0"), ("X-Request-Id", uid(r)),
            ("X-Correlation-Id", uid(r)), ("Traceparent", "00-%s-%s-01" % (hexs(r, 32), hexs(r, 16))),
            ("X-Client-Version", version_quad(r)), ("X-App-Build", version_quad(r)),
            ("Content-MD5", hexs(r, 32)), ("If-None-Match", '"%s"' % hexs(r, 40)),
            ("Date", "Mon, %02d Nov 2024 %02d:%02d:%02d GMT" % (r.randint(1, 28), r.randint(0, 23), r.randint(0, 59), r.randint(0, 59))),
            ("X-Order-Number", str(order_no(r))), ("X-Ratelimit-Reset", str(unix_ts(r))),
            ("Cookie", "lang=fr-FR; theme=dark; csrftoken=%s; cart_items=%d" % (alnum(r, 32), r.randint(0, 9)))]
    r.shuffle(hdrs)
    return "headers", hdrs, "p3_header_ids_versions_hashes"


def sc_geo(r):
    lat, lon = round(r.uniform(35, 62), 6), round(r.uniform(-10, 30), 6)
    k = r.randrange(3)
    if k == 0:
        body = {"courier_id": "%d" % r.randint(1000, 99999), "shipment": tracking(r),
                "last_location": L("%s,%s" % (lat, lon), "GEO_COORDINATE"),
                "reported_at": iso_ts(r), "battery": r.randint(1, 100)}
    elif k == 1:
        body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [L(lon, "GEO_COORDINATE"), L(lat, "GEO_COORDINATE")]},
                "properties": {"device_id": L(uid(r), "DEVICE_ID"), "speed_kmh": round(r.uniform(0, 90), 1)}}
    else:
        body = {"delivery": {"address": L("%d Kerkstraat, Amsterdam" % r.randint(1, 300), ign="ADDRESS"),
                             "latitude": L(lat, "GEO_COORDINATE"), "longitude": L(lon, "GEO_COORDINATE")},
                "warehouse": {"code": "WH-%d" % r.randint(1, 40), "lat": L(round(r.uniform(40, 55), 5), "GEO_COORDINATE"),
                              "lng": L(round(r.uniform(0, 20), 5), "GEO_COORDINATE")},
                "eta_minutes": r.randint(5, 90)}
    return "json", body, None


def sc_geo_neg(r):
    body = {"package": {"dimensions_cm": "%0.4f,%0.4f" % (r.uniform(10, 80), r.uniform(10, 80)),
                        "weight_kg": round(r.uniform(0.1, 30), 3), "price_range": "%0.2f,%0.2f" % (money(r), money(r)),
                        "scale": "%0.5f, %0.5f" % (r.uniform(0, 2), r.uniform(0, 2))},
            "exchange_rate": round(r.uniform(0.5, 5), 6), "zoom": r.randint(1, 20),
            "ratio": "%0.5f,%0.5f" % (r.uniform(0, 90), r.uniform(0, 180)), "ts": unix_ts(r)}
    return "json", body, "p3_coordinate_shaped_non_location"


def sc_kyc(r):
    fn, ln = person(r)
    k = r.randrange(3)
    body = {"applicant": {"first_name": L(fn, "PERSON"), "last_name": L(ln, "PERSON"),
                          "dob": L(dob(r), "DATE_OF_BIRTH"), "email": L(email_of(r, fn, ln), "EMAIL")},
            "check_type": "identity", "created_at": iso_ts(r), "report_id": uid(r)}
    if k == 0:
        body["applicant"]["ssn"] = L(ssn(r), "US_SSN")
    elif k == 1:
        body["applicant"]["national_insurance_number"] = L(nino(r, r.random() < 0.4), "NATIONAL_ID")
    else:
        body["applicant"]["phone_number"] = L(phone(r), "PHONE")
    return "json", body, None


def sc_kyc_neg(r):
    body = {"check": {"id": uid(r), "status": "complete", "result": "clear",
                      "reference": ssn(r, valid=False).replace("-", ""),
                      "document_number": "X%08d" % r.randint(0, 10 ** 8),
                      "sub_result": "clear", "completed_at": iso_ts(r)},
            "ssn_last4": "%04d" % r.randint(1, 9999), "payout_iban": iban(r, valid=False),
            "card_last4": "%04d" % r.randint(0, 9999), "bin": "%06d" % r.randint(400000, 499999)}
    return "json", body, "p3_kyc_partial_and_invalid_ids"


def sc_ssn_invalid(r):
    body = {"employee": {"id": "%d" % r.randint(1000, 99999), "tax_id": "", "ssn": ssn(r, valid=False),
                         "dept": "Finance"}, "payroll_run": "2024-%02d" % r.randint(1, 12)}
    return "json", body, "p3_ssn_invalid"


def sc_device_mdm(r):
    body = {"devices": [{"serial_number": alnum(r, 12).upper(), "imei": L(imei(r), "DEVICE_ID"),
                         "wifi_mac": L(mac(r), "DEVICE_ID"), "os_version": version_quad(r),
                         "firmware_version": version_quad(r), "last_seen": iso_ts(r),
                         "enrollment_id": uid(r)} for _ in range(r.randint(1, 2))],
            "page": 1, "per_page": 50}
    return "json", body, None


def sc_device_neg(r):
    body = {"build": {"commit": hexs(r, 40), "artifact_sha256": hexs(r, 64), "version": version_quad(r),
                      "versionName": version_quad(r), "version_code": r.randint(1000, 99999),
                      "release_id": uid(r), "created": iso_ts(r)},
            "checks": [{"name": "lint", "duration_ms": r.randint(100, 99999)},
                       {"name": "unit-tests", "duration_ms": r.randint(100, 99999)}],
            "cache_key": "%s:%s" % (hexs(r, 8), hexs(r, 8)), "time": "%02d:%02d:%02d" % (r.randint(0, 23), r.randint(0, 59), r.randint(0, 59))}
    return "json", body, "p3_build_hashes_versions"


def sc_refund_ref(r):
    """A payment reference / order number that happens to be a Luhn-valid issuer-prefixed 16-digit number
    is a card number by the rule; the Luhn-failing one beside it is not."""
    num = card(r)
    while len(num) != 16:
        num = card(r)
    key = r.choice(["ref", "reference", "payment_ref", "order_id", "refund_reference"])
    body = {key: L(num, "CREDIT_CARD"), "amount": money(r), "status": "succeeded",
            "original_order": card(r, luhn=False)}
    return "json", body, None


def sc_order_neg(r):
    body = {"order": {"number": order_no(r), "placed_at": iso_ts(r), "total": money(r), "currency": "EUR",
                      "shipping": {"carrier": r.choice(["DHL", "UPS", "La Poste"]), "tracking_number": tracking(r),
                                   "service_code": "%05d" % r.randint(0, 99999)},
                      "lines": [{"sku": sku(r), "ean": ean13(r), "qty": r.randint(1, 5), "unit_price": money(r)}],
                      "invoice": {"number": "F%d%06d" % (r.randint(2023, 2025), r.randint(0, 999999)),
                                  "date": "2024-%02d-%02d" % (r.randint(1, 12), r.randint(1, 28))}},
            "event_id": uid(r), "sent_at": unix_ts(r, ms=True), "ttl": 86400,
            "luhn_failing_ref": card(r, luhn=False)}
    return "json", body, "p3_order_tracking_ean_timestamps"


def sc_form_signup(r):
    fn, ln = person(r)
    loc = r.randrange(3)
    keys = [("first_name", "last_name", "email", "mobile", "birthday"),
            ("prenom", "nom", "email", "portable", "date_naissance"),
            ("vorname", "nachname", "email", "handynummer", "geburtstag")][loc]
    params = [(keys[0], L(fn, "PERSON")), (keys[1], L(ln, "PERSON")), (keys[2], L(email_of(r, fn, ln), "EMAIL")),
              (keys[3], L(phone(r), "PHONE")), (keys[4], L(dob(r, r.choice([0, 1, 2])), "DATE_OF_BIRTH")),
              ("consent", "1"), ("utm_campaign", "black-friday-2024"), ("csrf_token", alnum(r, 32))]
    return "form", params, None


def sc_webhook_verify(r):
    body = {"id": "evt_" + alnum(r, 24), "type": "invoice.paid", "created": unix_ts(r),
            "data": {"object": {"id": "in_" + alnum(r, 24), "number": "%s-%04d" % (alnum(r, 8).upper(), r.randint(1, 9999)),
                                "amount_paid": r.randint(100, 999999), "hosted_invoice_url": "https://pay.example.eu/i/%s" % alnum(r, 30),
                                "customer_email": None}},
            "signature": "t=%d,v1=%s" % (unix_ts(r), hexs(r, 64)), "api_version": "2024-06-20"}
    return "json", body, "p3_webhook_ids_signatures"


def sc_stripe_checkout(r):
    """Checkout sessions: the product's name sits under product_data, beside no sku or price key."""
    fn, ln = person(r)
    items = [{"price_data": {"currency": "eur", "unit_amount": r.randint(100, 99999),
                             "product_data": {"name": r.choice(PRODUCTS + ["Premium Plan", "Abonnement Annuel"]),
                                              "description": "Taille M"}},
              "quantity": r.randint(1, 3)} for _ in range(r.randint(1, 2))]
    body = {"mode": "payment", "line_items": items, "customer_email": L(email_of(r, fn, ln), "EMAIL"),
            "client_reference_id": uid(r), "success_url": "https://shop.example.eu/merci?session_id={CHECKOUT_SESSION_ID}",
            "locale": r.choice(["fr", "de", "it", "es"])}
    return "json", body, None


def sc_mailchimp_member(r):
    fn, ln = person(r)
    body = {"email_address": L(email_of(r, fn, ln), "EMAIL"), "status": "subscribed",
            "merge_fields": {"FNAME": L(fn, "PERSON"), "LNAME": L(ln, "PERSON"), "PHONE": L(phone(r), "PHONE"),
                             "BIRTHDAY": L("%02d/%02d" % (r.randint(1, 12), r.randint(1, 28)), "DATE_OF_BIRTH")},
            "tags": ["vip", "fr"], "timestamp_signup": iso_ts(r), "ip_signup": L(ipv4(r), "IP_ADDRESS")}
    return "json", body, None


def sc_meta_capi(r):
    body = {"data": [{"event_name": "Purchase", "event_time": unix_ts(r), "action_source": "website",
                      "event_id": uid(r),
                      "user_data": {"em": [hexs(r, 64)], "ph": [hexs(r, 64)],
                                    "client_ip_address": L(r.choice([ipv4(r), ipv6(r)]), "IP_ADDRESS"),
                                    "client_user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                                    "fbc": "fb.1.%d.%s" % (unix_ts(r, ms=True), alnum(r, 20)),
                                    "fbp": "fb.1.%d.%d" % (unix_ts(r, ms=True), r.randint(10 ** 9, 10 ** 10))},
                      "custom_data": {"currency": "EUR", "value": money(r), "order_id": order_no(r),
                                      "contents": [{"id": sku(r), "quantity": r.randint(1, 3), "item_price": money(r)}]}}],
            "test_event_code": "TEST%05d" % r.randint(0, 99999)}
    return "json", body, None


def sc_ads_hashed_neg(r):
    """Enhanced conversions: identifiers hashed before they leave; hashes are no e-mail or phone."""
    body = {"conversions": [{"gclid": b64u(r, 40), "conversion_action": "customers/%d/conversionActions/%d" % (r.randint(10 ** 9, 10 ** 10), r.randint(10 ** 6, 10 ** 9)),
                             "conversion_date_time": "2024-%02d-%02d %02d:%02d:%02d+01:00" % (r.randint(1, 12), r.randint(1, 28), r.randint(0, 23), r.randint(0, 59), r.randint(0, 59)),
                             "conversion_value": money(r), "currency_code": "EUR", "order_id": order_no(r),
                             "user_identifiers": [{"hashed_email": hexs(r, 64)}, {"hashed_phone_number": hexs(r, 64)}]}],
            "partial_failure": True, "validate_only": False}
    return "json", body, "p3_hashed_identifiers"


def sc_sentry_event(r):
    fn, ln = person(r)
    body = {"event_id": hexs(r, 32), "timestamp": unix_ts(r) + r.random(), "platform": "javascript",
            "release": "web@%s" % version_quad(r), "environment": "production",
            "sdk": {"name": "sentry.javascript.react", "version": "7.%d.%d" % (r.randint(0, 120), r.randint(0, 9))},
            "contexts": {"os": {"name": "Windows", "version": "10.0.19045"},
                         "browser": {"name": "Chrome", "version": "120.0.0.0"},
                         "app": {"app_version": version_quad(r), "build_number": version_quad(r)}},
            "user": {"id": L(str(r.randint(1000, 10 ** 7)), ign="USER_ID"), "email": L(email_of(r, fn, ln), "EMAIL"),
                     "ip_address": L(ipv4(r), "IP_ADDRESS"), "username": L(email_of(r, fn, ln).split("@")[0], ign="PERSON")},
            "exception": {"values": [{"type": "TypeError", "value": "Cannot read properties of undefined (reading 'price')"}]},
            "breadcrumbs": [{"category": "xhr", "data": {"url": "/api/orders/%s" % order_no(r).strip("#"), "status_code": 500,
                                                         "duration_ms": r.randint(10, 9999)}}]}
    return "json", body, None


def sc_segment_identify(r):
    fn, ln = person(r)
    body = {"type": "identify", "userId": L("%d" % r.randint(10 ** 5, 10 ** 8), ign="USER_ID"),
            "traits": {"firstName": L(fn, "PERSON"), "lastName": L(ln, "PERSON"), "email": L(email_of(r, fn, ln), "EMAIL"),
                       "phoneNumber": L(phone(r), "PHONE"), "birthday": L(dob(r, 0) + "T00:00:00.000Z", "DATE_OF_BIRTH"),
                       "address": {"street": L("%d Via Roma" % r.randint(1, 200), ign="ADDRESS"), "city": "Milano",
                                   "postalCode": "%05d" % r.randint(10000, 99999), "country": "IT"},
                       "plan": "premium", "logins": r.randint(1, 500), "createdAt": iso_ts(r)},
            "context": {"ip": L(ipv4(r), "IP_ADDRESS"), "timezone": "Europe/Rome"}, "messageId": uid(r)}
    return "json", body, None


def sc_shipping_label(r):
    fn, ln = person(r)
    body = {"shipment": {"shipper": {"name": "Entrepôt Lyon SAS", "company": "Boutique Example",
                                     "phone": L("+33 4 %02d %02d %02d %02d" % tuple(r.randint(0, 99) for _ in range(4)), "PHONE")},
                         "recipient": {"name": L("%s %s" % (fn, ln), "PERSON"),
                                       "phone": L(phone(r), "PHONE"), "email": L(email_of(r, fn, ln), "EMAIL"),
                                       "address": {"street1": L("%d Hauptstraße" % r.randint(1, 200), ign="ADDRESS"),
                                                   "zip": "%05d" % r.randint(10000, 99999), "country_code": "DE"}},
                         "parcels": [{"weight_kg": round(r.uniform(0.1, 20), 2), "length_cm": r.randint(10, 100),
                                      "reference": order_no(r)}],
                         "service": "express", "label_format": "PDF", "pickup_date": "2024-%02d-%02d" % (r.randint(1, 12), r.randint(1, 28))}}
    # the shipper's "name" is a warehouse (a company): the rules leave it open
    body["shipment"]["shipper"]["name"] = L(body["shipment"]["shipper"]["name"], ign="PERSON")
    return "json", body, None


def sc_price_deltas_neg(r):
    body = {"repricing": [{"sku": sku(r), "old": money(r), "delta": "+%.2f" % r.uniform(0.1, 99),
                           "delta_pct": "+%.1f%%" % r.uniform(0.1, 30)} for _ in range(2)],
            "valid_from": "2024-%02d-%02dT00:00:00+01:00" % (r.randint(1, 12), r.randint(1, 28)),
            "tz_offset": "+0%d00" % r.randint(1, 3), "batch": "%d" % r.randint(10 ** 7, 10 ** 9),
            "fx": {"EURPLN": round(r.uniform(4, 5), 4), "EURSEK": round(r.uniform(10, 12), 4)}}
    return "json", body, "p3_price_deltas_tz_offsets"


def sc_mail_text(r):
    """A plain-text e-mail body handed to a mail API (free text)."""
    fn, ln = person(r)
    k = r.randrange(5)
    ph = phone(r)
    if k == 0:
        parts = ["Bonjour ", L(fn, ign="PERSON"), ",\nVotre commande ", order_no(r), " d'un montant de %.2f € a été expédiée. "
                 "Numéro de suivi : " % money(r), tracking(r), ".\nPour toute question : Tél. ", L(ph, "PHONE"),
                 " ou ", L(email_of(r, fn, ln), "EMAIL"), ".\n"]
    elif k == 1:
        parts = ["Sehr geehrte/r ", L("%s %s" % (fn, ln), ign="PERSON"), ",\nbitte überweisen Sie %.2f EUR bis zum %02d.%02d.2024 auf "
                 "folgendes Konto: IBAN " % (money(r), r.randint(1, 28), r.randint(1, 12)), L(iban_print(r, iban(r, cc="DE")), "IBAN"),
                 ", Verwendungszweck: Rechnung ", "RE%d" % r.randint(10 ** 6, 10 ** 8), ".\nRückfragen: Tel. ", L(ph, "PHONE"), "\n"]
    elif k == 2:
        parts = ["Hola ", L(fn, ign="PERSON"), ", tu pedido ", order_no(r), " llegará el %02d/%02d/2024. Móvil de contacto del repartidor: " %
                 (r.randint(1, 28), r.randint(1, 12)), L(phone(r, intl=True), "PHONE"), ". Código de recogida: %06d." % r.randint(0, 999999)]
    elif k == 3:
        parts = ["Hi ", L(fn, ign="PERSON"), ", your login from ", L(ipv4(r), "IP_ADDRESS"), " (", r.choice(["Chrome 120 on Windows", "Safari 17.1 on macOS"]),
                 ") at %02d:%02d UTC was recorded. Not you? Reset at https://acme.example/reset/%s" % (r.randint(0, 23), r.randint(0, 59), b64u(r, 22))]
    else:
        parts = ["Dzień dobry, zamówienie nr ", order_no(r), " zostało wysłane. Kwota: %d,%02d zł. Tel. kom. " % (r.randint(10, 9999), r.randint(0, 99)),
                 L(ph, "PHONE"), ", e-mail: ", L(email_of(r, fn, ln), "EMAIL"), "."]
    return "free_text", P(*parts), None


def sc_mail_text_neg(r):
    parts = ["Your order %s (%d items, %.2f EUR) shipped on %s via DHL, tracking %s. Build %s, release notes at "
             "https://acme.example/rel/%s. Warehouse slot %02d:%02d-%02d:%02d. Ref %d." %
             (order_no(r), r.randint(1, 9), money(r), "2024-%02d-%02d" % (r.randint(1, 12), r.randint(1, 28)), tracking(r),
              version_quad(r), version_quad(r), r.randint(0, 23), r.randint(0, 59), r.randint(0, 23), r.randint(0, 59),
              r.randint(10 ** 5, 10 ** 9))]
    return "free_text", P(*parts), "p3_mail_text_lookalikes"


def sc_camel_json(r):
    fn, ln = person(r)
    body = {"customer": {"firstName": L(fn, "PERSON"), "lastName": L(ln, "PERSON"),
                         "emailAddress": L(email_of(r, fn, ln), "EMAIL"), "mobileNumber": L(phone(r), "PHONE"),
                         "dateOfBirth": L(dob(r, r.choice([0, 1, 2])), "DATE_OF_BIRTH"),
                         "ipAddress": L(ipv4(r), "IP_ADDRESS"), "deviceId": L(r.choice([uid(r), hexs(r, 16)]), "DEVICE_ID"),
                         "loyaltyTier": "gold", "customerSince": "2019-%02d-%02d" % (r.randint(1, 12), r.randint(1, 28))},
            "cart": {"cartId": uid(r), "items": [{"productName": r.choice(PRODUCTS), "unitPrice": money(r), "qty": 1}]}}
    return "json", body, None


def sc_people_keys(r):
    """People under the compound name keys of e-signature, HR, events, freight and school APIs."""
    fn, ln = person(r)
    fn2, ln2 = person(r)
    k = r.randrange(4)
    if k == 0:
        body = {"envelope": {"subject": "Contrat %d" % r.randint(1000, 9999), "signer_name": L("%s %s" % (fn, ln), "PERSON"),
                             "signer_email": L(email_of(r, fn, ln), "EMAIL"), "witness_name": L("%s %s" % (fn2, ln2), "PERSON"),
                             "document": {"name": "Contrat de bail.pdf", "pages": r.randint(1, 30)}, "expires_at": iso_ts(r)}}
    elif k == 1:
        body = {"event": {"name": "Webinar Q%d" % r.randint(1, 4), "starts_at": iso_ts(r)},
                "organizer": {"name": L("%s %s" % (fn, ln), "PERSON"), "email": L(email_of(r, fn, ln), "EMAIL")},
                "attendees": [{"name": L("%s %s" % (fn2, ln2), "PERSON"), "email": L(email_of(r, fn2, ln2), "EMAIL"),
                               "ticket_type": "standard"}]}
    elif k == 2:
        body = {"student": {"student_id": "%d" % r.randint(10 ** 5, 10 ** 7), "guardian_name": L("%s %s" % (fn, ln), "PERSON"),
                            "guardian_phone": L(phone(r), "PHONE"), "emergency_contact_name": L("%s %s" % (fn2, ln2), "PERSON"),
                            "class": "%dB" % r.randint(1, 9)}}
    else:
        body = {"payment": {"name_on_card": L(("%s %s" % (fn, ln)).upper(), "PERSON"), "last4": "%04d" % r.randint(0, 9999),
                            "consignee_name": L("%s %s" % (fn2, ln2), "PERSON"), "author_name": L("%s %s" % (fn, ln), "PERSON")}}
    return "json", body, None


def sc_named_things_neg(r):
    """Objects whose "name" titles a thing (offers, files, places, fields, tags), Title Case, beside nothing personal."""
    body = {"offer": {"name": r.choice(["Summer Sale", "Black Friday Deal", "Soldes Hiver"]), "discount_pct": r.randint(5, 70)},
            "attachments": [{"name": r.choice(["Invoice March.pdf", "Photo Front.jpg", "Passport Scan"]),
                             "size": r.randint(1000, 10 ** 7), "sha256": hexs(r, 64)}],
            "location": {"name": r.choice(["Berlin Mitte", "Lyon Part-Dieu", "Milano Centrale"]), "code": "LOC-%d" % r.randint(1, 99)},
            "custom_fields": [{"name": r.choice(["Loyalty Tier", "Preferred Store", "Account Manager"]), "value": r.choice(["Gold", "Silver", "Lyon"])}],
            "tags": [{"name": r.choice(["VIP", "Newsletter", "B2B"])}], "updated_at": iso_ts(r)}
    return "json", body, "p3_named_things"


def sc_device_keys(r):
    body = {"device": {"mobile_device_id": L(uid(r).upper(), "DEVICE_ID"), "maid": L(uid(r), "DEVICE_ID"),
                       "installation_id": L(uid(r), "DEVICE_ID"), "mobile_os_version": version_quad(r),
                       "mobile_app_version": version_quad(r), "lmt": 0},
            "event_id": uid(r), "session": {"id": L(uid(r), ign="SESSION_ID"), "started_at": iso_ts(r)}}
    return "json", body, None


def sc_buy_now_form(r):
    """A flat order form: the buyer's name beside the sku bought, with the buyer's contact keys: a person's."""
    fn, ln = person(r)
    params = [("name", L("%s %s" % (fn, ln), "PERSON")), ("sku", sku(r)), ("qty", str(r.randint(1, 3))),
              ("price", "%.2f" % money(r))]
    params.append(r.choice([("email", L(email_of(r, fn, ln), "EMAIL")), ("tel", L(phone(r), "PHONE")),
                            ("iban", L(iban(r), "IBAN"))]))
    r.shuffle(params)
    if r.random() < 0.5:
        return "form", params, None
    return "query", ("/checkout/buy-now", params), None


SCENARIOS = [
    (sc_payment_json, 8), (sc_payment_form, 6), (sc_sepa_mandate, 6), (sc_crm_contact, 12), (sc_crm_search_query, 3),
    (sc_email_send, 5), (sc_sms_send, 6), (sc_analytics_track, 6), (sc_analytics_product_only, 8),
    (sc_product_form, 6), (sc_support_ticket, 10), (sc_ai_chat, 6), (sc_ai_chat_neg, 4), (sc_openrtb, 5),
    (sc_pixel_query, 5), (sc_pixel_neg, 5), (sc_headers, 8), (sc_headers_neg, 5), (sc_geo, 6), (sc_geo_neg, 4),
    (sc_kyc, 8), (sc_kyc_neg, 4), (sc_ssn_invalid, 2), (sc_device_mdm, 4), (sc_device_neg, 5), (sc_refund_ref, 3),
    (sc_order_neg, 8), (sc_form_signup, 8), (sc_webhook_verify, 3), (sc_stripe_checkout, 4),
    (sc_mailchimp_member, 4), (sc_meta_capi, 4), (sc_ads_hashed_neg, 4), (sc_sentry_event, 4),
    (sc_segment_identify, 4), (sc_shipping_label, 4), (sc_price_deltas_neg, 4), (sc_mail_text, 8),
    (sc_mail_text_neg, 5), (sc_camel_json, 5), (sc_people_keys, 6), (sc_named_things_neg, 5), (sc_device_keys, 3),
    (sc_buy_now_form, 4),
]


def render(ctx, payload, r):
    o = Out()
    if ctx == "json":
        emit_json(o, payload, r, r.random() < 0.3)
    elif ctx == "form":
        emit_params(o, payload, True)
    elif ctx == "query":
        path, params = payload
        o.put(path + "?")
        emit_params(o, params, False)
    elif ctx == "headers":
        emit_headers(o, payload)
    elif ctx == "free_text":
        for text, t, ig in pieces(payload):
            o.put(text, t, ig)
    return o


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--n", type=int, default=2000)
    a = ap.parse_args()
    r = random.Random(a.seed)
    fns, weights = zip(*SCENARIOS)
    for i in range(a.n):
        fn = r.choices(fns, weights)[0]
        ctx, payload, negk = fn(r)
        o = render(ctx, payload, r)
        text = o.text()
        for e in o.ents + o.ign:
            assert 0 <= e["start"] < e["end"] <= len(text)
        rec = {"id": "p3-%d-%04d" % (a.seed, i), "text": text, "entities": o.ents, "ignore": o.ign,
               "label_scope": "all", "context": ctx,
               "negative_kind": None if o.ents else (negk or "p3_" + fn.__name__[3:]),
               "source": "constructed: pii_probe3.py seed %d, scenario %s" % (a.seed, fn.__name__[3:])}
        sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
