#!/usr/bin/env python3
"""Second-opinion held-out generator for the classifier (stdlib only, seeded).

  python3 tests/tools/pii_probe2.py [--seed N] [--n 3000] [--set a|b|c] > probe2.jsonl
  python3 tests/tools/pii_eval.py --gold probe2.jsonl --score ../shared/eval/pii/score.py [--errors]

--set a (default) holds the templates the first round of fixes was made against; b (prose) and c
(HTTP payloads) were written after those fixes, to check that they generalise.

Writes lines in the format of ../shared/eval/pii/dev.jsonl ({id, text, entities, ignore,
label_scope, context, negative_kind, source}), modelled on what a Presidio-style held-out set
holds: template sentences (support tickets, chat, CRM notes, log lines, letters with names and
addresses) and HTTP payloads (JSON, form, query, header blocks), with values written the way
people in the US, UK, DE, FR, ES, NL, IT, PL, IN, BR and JP write them, and many hard negatives:
numbers shaped like PII (order ids, timestamps, grouped amounts, versions, hashes, ISBNs,
postcodes, dates, non-geo decimal pairs, sequence ids). Names, addresses and dates in prose are
`ignore` spans, as in dev. Written without looking at dev.jsonl's texts or pii_synth.py.
"""
import argparse, json, random, string

SRC = "constructed: tests/tools/pii_probe2.py (seeded, stdlib)"

FIRST = ["Anna", "Jonas", "Lukas", "Marie", "Camille", "Lucas", "Lucía", "Javier", "Sanne", "Daan",
         "Giulia", "Marco", "Agnieszka", "Piotr", "Oliver", "Amelia", "Priya", "Rahul", "Ana", "João",
         "Yuki", "Haruto", "Emily", "Michael", "Sophie", "Thomas", "Fatima", "Mohammed", "Chloé",
         "Łukasz", "Zoë", "Björn", "Siobhan", "Aarav", "Beatriz", "Kenji"]
LAST = ["Müller", "Schmidt", "Dubois", "Lefèvre", "García", "Fernández", "de Vries", "Jansen",
        "Rossi", "Bianchi", "Kowalski", "Nowak", "Smith", "O'Brien", "Sharma", "Patel", "Silva",
        "Oliveira", "Tanaka", "Sato", "Johnson", "Williams", "van der Berg", "Wiśniewska",
        "Martínez", "Moreau", "Esposito", "Kumar", "Santos", "Suzuki", "Brown", "Taylor"]
STREETS = ["Hauptstraße 12, 10115 Berlin", "12 rue de la Paix, 75002 Paris", "Calle Mayor 5, 28013 Madrid",
           "Keizersgracht 123, 1015 CJ Amsterdam", "Via Roma 10, 00184 Roma", "ul. Marszałkowska 84, 00-514 Warszawa",
           "221B Baker Street, London NW1 6XE", "1600 Pennsylvania Ave NW, Washington, DC 20500",
           "42 MG Road, Bengaluru 560001", "Av. Paulista, 1578 - Bela Vista, São Paulo - SP, 01310-200",
           "〒100-0005 東京都千代田区丸の内1-9-1", "Flat 3, 17 Queen's Road, Manchester M8 8QT",
           "Leopoldstraße 7, 80802 München", "Rua Augusta 1200, 01304-001 São Paulo"]
DOMAINS = ["gmail.com", "yahoo.co.uk", "web.de", "gmx.de", "orange.fr", "libero.it", "wp.pl", "outlook.com",
           "hotmail.es", "ziggo.nl", "rediffmail.com", "uol.com.br", "yahoo.co.jp", "example.org",
           "acme-corp.com", "mail.company.io", "posteo.de", "free.fr", "t-online.de", "icloud.com"]
ASCII = {"ü": "ue", "ö": "oe", "ä": "ae", "é": "e", "è": "e", "í": "i", "ã": "a", "ç": "c", "ł": "l", "Ł": "L",
         "ś": "s", "ë": "e", "ó": "o", "'": "", " ": ""}


class Line:
    """Accumulates text with labelled spans."""

    def __init__(self):
        self.s, self.ents, self.ign = "", [], []

    def t(self, x):
        self.s += x
        return self

    def e(self, typ, x):
        self.ents.append({"type": typ, "start": len(self.s), "end": len(self.s) + len(x)})
        self.s += x
        return self

    def i(self, typ, x):
        self.ign.append({"type": typ, "start": len(self.s), "end": len(self.s) + len(x)})
        self.s += x
        return self


def fill(r, tmpl, vals):
    """tmpl has {k} slots; vals[k] = (kind, text) with kind 'E:TYPE', 'I:TYPE' or None."""
    L = Line()
    i = 0
    while i < len(tmpl):
        j = tmpl.find("{", i)
        if j < 0:
            L.t(tmpl[i:])
            break
        L.t(tmpl[i:j])
        k = tmpl.index("}", j)
        kind, txt = vals[tmpl[j + 1:k]]
        if kind and kind.startswith("E:"):
            L.e(kind[2:], txt)
        elif kind and kind.startswith("I:"):
            L.i(kind[2:], txt)
        else:
            L.t(txt)
        i = k + 1
    return L


# ---------------------------------------------------------------- value makers (valid PII)

def digits(r, n):
    return "".join(r.choice(string.digits) for _ in range(n))


def luhn_digit(body):
    s = 0
    for k, ch in enumerate(reversed(body)):
        d = int(ch)
        if k % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        s += d
    return str((10 - s % 10) % 10)


def card(r):
    kind = r.choice(["visa", "visa", "mc", "mc2", "amex", "disc", "jcb", "diners", "maestro"])
    pre, n = {"visa": ("4", 16), "mc": (str(r.randint(51, 55)), 16), "mc2": (str(r.randint(2221, 2720)), 16),
              "amex": (r.choice(["34", "37"]), 15), "disc": ("6011", 16), "jcb": (str(r.randint(3528, 3589)), 16),
              "diners": (r.choice(["36", "38"]), 14), "maestro": ("6759", 16)}[kind]
    if kind == "maestro":
        kind = "disc"; pre = "65"
    body = pre + digits(r, n - 1 - len(pre))
    d = body + luhn_digit(body)
    sep = r.choice(["", " ", " ", "-"])
    if not sep:
        return d
    if len(d) == 15:
        return sep.join([d[:4], d[4:10], d[10:]])
    if len(d) == 14:
        return sep.join([d[:4], d[4:10], d[10:]])
    return sep.join(d[k:k + 4] for k in range(0, len(d), 4))


def bad_luhn16(r):
    body = r.choice(["4", "5", "3", "6", "1", "7", "8", "9"]) + digits(r, 14)
    return body + str((int(luhn_digit(body)) + r.randint(1, 9)) % 10)


IBAN_FMT = {"DE": "n18", "FR": "n10a11n2", "ES": "n20", "NL": "a4n10", "IT": "a1n10a12", "PL": "n24",
            "GB": "a4n14", "BE": "n12", "AT": "n16", "CH": "n5a12", "PT": "n21", "BR": "n23a1a1", "IE": "a4n14",
            "SE": "n20", "DK": "n14", "NO": "n11", "FI": "n14", "LU": "n3a13", "CZ": "n20", "HU": "n24"}


def bban(r, cc):
    f = IBAN_FMT[cc]
    out = ""
    k = 0
    while k < len(f):
        kind = f[k]
        j = k + 1
        while j < len(f) and f[j].isdigit():
            j += 1
        cnt = int(f[k + 1:j])
        pool = string.digits if kind == "n" else (string.ascii_uppercase if cc in ("NL", "GB", "IE", "IT", "BR")
                                                   else string.ascii_uppercase + string.digits)
        out += "".join(r.choice(pool) for _ in range(cnt))
        k = j
    return out


def iban_check(cc, b):
    s = b + cc + "00"
    num = "".join(str(int(ch, 36)) for ch in s)
    return "%02d" % (98 - int(num) % 97)


def iban(r, cc=None, bad=False):
    cc = cc or r.choice(list(IBAN_FMT))
    b = bban(r, cc)
    chk = iban_check(cc, b)
    if bad:
        chk = "%02d" % ((int(chk) + r.randint(1, 40)) % 97 + 2)
        if chk == iban_check(cc, b):
            chk = "%02d" % ((int(chk) + 1) % 98 + 1)
    s = cc + chk + b
    if r.random() < 0.55:
        s = " ".join(s[k:k + 4] for k in range(0, len(s), 4))
    return s


def phone(r, loc):
    d = lambda n: digits(r, n)
    nz = lambda: str(r.randint(2, 9))
    f = {
        "US": lambda: r.choice([f"({nz()}{d(2)}) {nz()}{d(2)}-{d(4)}", f"{nz()}{d(2)}-{nz()}{d(2)}-{d(4)}",
                                f"{nz()}{d(2)}.{nz()}{d(2)}.{d(4)}", f"+1 {nz()}{d(2)} {nz()}{d(2)} {d(4)}",
                                f"+1-{nz()}{d(2)}-{nz()}{d(2)}-{d(4)}", f"1-800-{nz()}{d(2)}-{d(4)}",
                                f"({nz()}{d(2)}){nz()}{d(2)}-{d(4)}", f"{nz()}{d(2)}-{nz()}{d(2)}-{d(4)} ext. {d(3)}"]),
        "UK": lambda: r.choice([f"+44 20 7{d(3)} {d(4)}", f"020 7{d(3)} {d(4)}", f"07{r.randint(400,999)} {d(6)}",
                                f"+44 7{r.randint(400,999)} {d(6)}", f"(0161) {nz()}{d(2)} {d(4)}",
                                f"01{d(3)} {d(6)}", f"+44 (0)20 7{d(3)} {d(4)}"]),
        "DE": lambda: r.choice([f"+49 30 {nz()}{d(6)}", f"030 {nz()}{d(3)} {d(4)}", f"0171 {nz()}{d(6)}",
                                f"+49 (0)89 {nz()}{d(5)}", f"+49 151 {d(4)} {d(4)}", f"0049 40 {nz()}{d(6)}",
                                f"089/{nz()}{d(6)}", f"+49-221-{nz()}{d(5)}"]),
        "FR": lambda: r.choice([f"01 {d(2)} {d(2)} {d(2)} {d(2)}", f"06 {d(2)} {d(2)} {d(2)} {d(2)}",
                                f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}", f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
                                f"07.{d(2)}.{d(2)}.{d(2)}.{d(2)}", f"+33 (0)6 {d(2)} {d(2)} {d(2)} {d(2)}"]),
        "ES": lambda: r.choice([f"+34 91{d(1)} {d(3)} {d(3)}", f"6{d(2)} {d(3)} {d(3)}", f"91 {d(3)} {d(2)} {d(2)}",
                                f"+34 6{d(2)} {d(2)} {d(2)} {d(2)}", f"+34 6{d(8)}"]),
        "NL": lambda: r.choice([f"+31 20 {d(3)} {d(4)}", f"020-{nz()}{d(6)}", f"06-{d(8)}", f"+31 6 {d(8)}",
                                f"010 {d(3)} {d(4)}", f"+31 (0)6 {d(4)} {d(4)}"]),
        "IT": lambda: r.choice([f"+39 06 {d(4)} {d(4)}", f"3{d(2)} {d(3)} {d(4)}", f"+39 3{d(2)} {d(7)}",
                                f"02 {d(4)} {d(4)}", f"+39 02-{d(8)}"]),
        "PL": lambda: r.choice([f"+48 22 {d(3)} {d(2)} {d(2)}", f"5{d(2)} {d(3)} {d(3)}", f"+48 6{d(2)}-{d(3)}-{d(3)}",
                                f"+48 {r.choice('5678')}{d(8)}", f"(22) {d(3)} {d(2)} {d(2)}"]),
        "IN": lambda: r.choice([f"+91 9{d(4)} {d(5)}", f"+91-9{d(9)}", f"09{d(4)} {d(5)}", f"9{d(9)}",
                                f"+91 80 {d(4)} {d(4)}", f"022-{d(8)}", f"+91 98{d(3)}-{d(5)}"]),
        "BR": lambda: r.choice([f"+55 11 9{d(4)}-{d(4)}", f"(11) 9{d(4)}-{d(4)}", f"(21) {nz()}{d(3)}-{d(4)}",
                                f"+55 (21) 9{d(4)}-{d(4)}", f"+55 61 {nz()}{d(3)}-{d(4)}", f"11 9{d(4)}-{d(4)}"]),
        "JP": lambda: r.choice([f"03-{d(4)}-{d(4)}", f"090-{d(4)}-{d(4)}", f"+81 3-{d(4)}-{d(4)}",
                                f"+81 90-{d(4)}-{d(4)}", f"06-{d(4)}-{d(4)}", f"080 {d(4)} {d(4)}", f"(03) {d(4)}-{d(4)}"]),
    }[loc]
    return f()


def email(r, first=None, last=None):
    first = first or r.choice(FIRST)
    last = last or r.choice(LAST)
    fa = "".join(ASCII.get(c, c) for c in first).lower()
    la = "".join(ASCII.get(c, c) for c in last).lower()
    local = r.choice([f"{fa}.{la}", f"{fa}{la[:1]}", f"{fa[:1]}{la}{r.randint(1, 99)}", f"{fa}_{la}",
                      f"{fa}+{r.choice(['shop', 'news', 'work'])}", f"{la}.{fa}", f"{fa}-{la}", f"{fa.upper()}.{la.title()}"])
    return local + "@" + r.choice(DOMAINS)


def ipv4(r):
    while True:
        a = r.choice([r.randint(1, 223), 10, 172, 192, 203, 81, 145, 91, 185])
        q = [a, r.randint(0, 255), r.randint(0, 255), r.randint(1, 254)]
        if q[0] != 127:
            return ".".join(map(str, q))


def ipv6(r):
    g = ["%x" % r.randint(0, 0xffff) for _ in range(8)]
    k = r.random()
    if k < 0.3:
        return "2001:db8:" + ":".join(g[2:4]) + "::" + g[7]
    if k < 0.5:
        return "fe80::" + ":".join(g[4:])
    if k < 0.6:
        return "::ffff:" + ipv4(r)
    return ":".join("%04x" % int(x, 16) if r.random() < 0.3 else x for x in g)


def ssn(r, sep="-"):
    while True:
        a = r.randint(1, 899)
        if a != 666:
            break
    return f"{a:03d}{sep}{r.randint(1, 99):02d}{sep}{r.randint(1, 9999):04d}"


def nino(r):
    first = "ABCEGHJKLMNOPRSTWXYZ"
    second = "ABCEGHJKLMNPRSTWXYZ"
    while True:
        p = r.choice(first) + r.choice(second)
        if p not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
            break
    n = digits(r, 6)
    s = r.choice("ABCD")
    if r.random() < 0.5:
        return f"{p} {n[:2]} {n[2:4]} {n[4:]} {s}"
    return p + n + s


def mac(r):
    b = ["%02x" % r.randint(0, 255) for _ in range(6)]
    if r.random() < 0.4:
        b = [x.upper() for x in b]
    k = r.random()
    if k < 0.5:
        return ":".join(b)
    if k < 0.8:
        return "-".join(b)
    h = "".join(b)
    return ".".join(h[i:i + 4] for i in range(0, 12, 4))


def imei(r):
    body = digits(r, 14)
    return body + luhn_digit(body)


def uuid4(r):
    h = "%032x" % r.getrandbits(128)
    h = h[:12] + "4" + h[13:16] + r.choice("89ab") + h[17:]
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def b64u(r, n):
    return "".join(r.choice(string.ascii_letters + string.digits + "-_") for _ in range(n))


def jwt(r):
    import base64
    enc = lambda o: base64.urlsafe_b64encode(json.dumps(o, separators=(",", ":")).encode()).decode().rstrip("=")
    h = enc({"alg": r.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"})
    p = enc({"sub": str(r.randint(1000, 99999)), "iat": 1700000000 + r.randint(0, 9999999), "role": "user"})
    return f"{h}.{p}.{b64u(r, 43)}"


def apikey(r):
    return r.choice([lambda: "sk_live_" + b64u(r, 24).replace("-", "a").replace("_", "b"),
                     lambda: "AKIA" + "".join(r.choice(string.ascii_uppercase + "234567") for _ in range(16)),
                     lambda: "ghp_" + "".join(r.choice(string.ascii_letters + string.digits) for _ in range(36)),
                     lambda: "xoxb-" + digits(r, 11) + "-" + digits(r, 12) + "-" + "".join(r.choice(string.ascii_letters + string.digits) for _ in range(24)),
                     lambda: "AIza" + b64u(r, 35)])()


def coord(r, lim):
    return "%.*f" % (r.choice([4, 5, 6]), r.uniform(-lim, lim))


def dob(r):
    y, m, d = r.randint(1940, 2005), r.randint(1, 12), r.randint(1, 28)
    return r.choice([f"{y}-{m:02d}-{d:02d}", f"{d:02d}.{m:02d}.{y}", f"{m:02d}/{d:02d}/{y}", f"{d:02d}/{m:02d}/{y}"])


# ---------------------------------------------------------------- hard negatives (not PII)

def neg_number(r):
    """A PII-shaped number that is not personal data, with a word that says what it is."""
    d = lambda n: digits(r, n)
    y = r.randint(2019, 2026)
    mo, da = r.randint(1, 12), r.randint(1, 28)
    hh, mm, ss = r.randint(0, 23), r.randint(0, 59), r.randint(0, 59)
    return r.choice([
        lambda: f"order #{y}{mo:02d}{da:02d}-{d(5)}",
        lambda: f"Order ID {bad_luhn16(r)}",
        lambda: f"order no. {d(3)}-{d(7)}-{d(7)}",
        lambda: f"tracking number 1Z{''.join(r.choice(string.ascii_uppercase + string.digits) for _ in range(16))}",
        lambda: f"invoice INV-{y}-{d(6)}",
        lambda: f"ts={1600000000 + r.randint(0, 199999999)}",
        lambda: f"epoch ms {1600000000000 + r.randint(0, 199999999999)}",
        lambda: f"{y}-{mo:02d}-{da:02d}T{hh:02d}:{mm:02d}:{ss:02d}.{d(3)}Z",
        lambda: f"{y}-{mo:02d}-{da:02d} {hh:02d}:{mm:02d}:{ss:02d},{d(3)}",
        lambda: f"{da:02d}/{mo:02d}/{y} {hh:02d}:{mm:02d}",
        lambda: f"{da:02d}.{mo:02d}.{y}",
        lambda: f"{y}{mo:02d}{da:02d}{hh:02d}{mm:02d}{ss:02d}",
        lambda: f"$ {r.randint(1, 999)},{d(3)},{d(3)}.{d(2)}",
        lambda: f"{r.randint(1, 999)}.{d(3)}.{d(3)},{d(2)} €",
        lambda: f"€ {r.randint(1, 999)} {d(3)},{d(2)}",
        lambda: f"₹{r.randint(1, 99)},{d(2)},{d(2)},{d(3)}.00",
        lambda: f"Rs. {r.randint(1, 9)},{d(2)},{d(2)},{d(3)}",
        lambda: f"R$ {r.randint(1, 999)}.{d(3)},{d(2)}",
        lambda: f"¥{r.randint(1, 999)},{d(3)},{d(3)}",
        lambda: f"{r.randint(1, 999)} {d(3)} {d(3)} zł",
        lambda: f"CHF {r.randint(1, 99)}'{d(3)}'{d(3)}.{d(2)}",
        lambda: f"version {r.randint(1, 20)}.{r.randint(0, 30)}.{r.randint(0, 300)}.{r.randint(0, 9999)}",
        lambda: f"Windows 10.0.{r.randint(10000, 22631)}.{r.randint(100, 4000)}",
        lambda: f"Chrome/{r.randint(90, 131)}.0.{r.randint(4000, 6999)}.{r.randint(10, 250)}",
        lambda: f"build {r.randint(1, 9)}.{r.randint(0, 99)}.{r.randint(0, 255)}.{r.randint(1000, 99999)}",
        lambda: f"commit {'%040x' % r.getrandbits(160)}",
        lambda: f"sha256:{'%064x' % r.getrandbits(256)}",
        lambda: f"md5 {'%032x' % r.getrandbits(128)}",
        lambda: f"ISBN 978-{r.randint(0, 9)}-{d(3)}-{d(5)}-{r.randint(0, 9)}",
        lambda: f"ISBN-13: 978{d(10)}",
        lambda: f"EAN {r.choice(['40', '50', '76', '87', '45'])}{d(11)}",
        lambda: f"{r.randint(10000, 99999)} Berlin",
        lambda: f"CEP {d(5)}-{d(3)}",
        lambda: f"PIN code {r.randint(110001, 855117)}",
        lambda: f"〒{d(3)}-{d(4)}",
        lambda: f"{d(2)}-{d(3)} Kraków",
        lambda: f"{r.randint(1000, 9999)} {r.choice(string.ascii_uppercase)}{r.choice(string.ascii_uppercase)} Utrecht",
        lambda: f"scale factor {r.uniform(10, 80):.4f}, {r.uniform(1, 170):.4f}",
        lambda: f"x={r.uniform(0, 90):.5f} y={r.uniform(0, 180):.5f}",
        lambda: f"latency p50 {r.uniform(1, 90):.3f} ms, p99 {r.uniform(1, 180):.3f} ms",
        lambda: f"seq {d(12)}",
        lambda: f"ticket #{r.randint(100000, 9999999)}",
        lambda: f"case 0{d(7)}",
        lambda: f"SKU {d(4)}-{d(4)}-{d(4)}",
        lambda: f"Part No. {d(3)}-{d(2)}-{d(4)}-{r.choice(string.ascii_uppercase)}",
        lambda: f"ref {d(4)} {d(4)} {d(4)} {d(4)}",
        lambda: f"OID 1.3.6.1.4.1.{r.randint(100, 99999)}.{r.randint(1, 9)}",
        lambda: f"section {r.randint(1, 9)}.{r.randint(1, 9)}.{r.randint(1, 20)}.{r.randint(1, 20)}",
        lambda: f"{r.randint(1, 12)}:{r.randint(10, 59)}:{r.randint(10, 59)} elapsed",
        lambda: f"{y}年{mo}月{da}日",
        lambda: f"{r.randint(1, 999)},{d(3)}円",
        lambda: f"{r.randint(1, 99)}万{r.randint(1, 9)}千円",
        lambda: f"batch {y}{d(8)}",
        lambda: f"{r.randint(100, 999)} {d(3)} {d(3)} {d(3)} items processed",
        lambda: f"KVK {d(8)}",
        lambda: f"SIRET {d(3)} {d(3)} {d(3)} {d(5)}",
        lambda: f"USt-IdNr. DE{d(9)}",
        lambda: f"error code 0x{'%08X' % r.getrandbits(32)}",
        lambda: f"pid {r.randint(100, 99999)} port {r.randint(1024, 65535)}",
        lambda: f"ratio {r.randint(1, 999)}:{r.randint(1, 999)}",
    ])()


# ---------------------------------------------------------------- free-text templates

def vals_common(r, loc):
    fn, ln = r.choice(FIRST), r.choice(LAST)
    name = f"{fn} {ln}"
    return fn, ln, name


def free_text_line(r):
    loc = r.choice(["US", "UK", "DE", "FR", "ES", "NL", "IT", "PL", "IN", "BR", "JP"])
    fn, ln, name = vals_common(r, loc)
    V = {"name": ("I:PERSON", name), "first": ("I:PERSON", fn), "addr": ("I:ADDRESS", r.choice(STREETS)),
         "phone": ("E:PHONE", phone(r, loc)), "phone2": ("E:PHONE", phone(r, r.choice(["US", "UK", "DE", "IN"]))),
         "email": ("E:EMAIL", email(r, fn, ln)), "cc": ("E:CREDIT_CARD", card(r)),
         "iban": ("E:IBAN", iban(r, {"UK": "GB", "US": None, "IN": None, "JP": None}.get(loc, loc))),
         "ip": ("E:IP_ADDRESS", ipv4(r)), "ip6": ("E:IP_ADDRESS", ipv6(r)), "ssn": ("E:US_SSN", ssn(r)),
         "nino": ("E:NATIONAL_ID", nino(r)), "mac": ("E:DEVICE_ID", mac(r)), "imei": ("E:DEVICE_ID", imei(r)),
         "jwt": ("E:AUTH_TOKEN", jwt(r)), "key": ("E:AUTH_TOKEN", apikey(r)),
         "date": ("I:DATE_TIME", dob(r)), "neg": (None, neg_number(r)), "neg2": (None, neg_number(r)),
         "n": (None, str(r.randint(2, 9)))}
    T = [
        "Hi, this is {name}. Please call me back on {phone} after 5pm.",
        "Customer {name} ({email}) reports the app crashes on login. Ticket ref: {neg}.",
        "{name} called from {phone} about {neg}; promised a callback.",
        "Ship to: {name}, {addr}. Phone: {phone}",
        "Can you refund the card ending in the number {cc}? Thanks, {first}",
        "My card {cc} was charged twice for {neg}.",
        "Please wire the deposit to IBAN {iban} (account holder {name}).",
        "Bankverbindung: {iban}, Kontoinhaber {name}. Tel. {phone}",
        "Coordonnées bancaires : {iban} — titulaire {name}, tél. {phone}",
        "Número de cuenta {iban}. Llámame al {phone}, {first}.",
        "Rekeningnummer {iban} t.n.v. {name}, mobiel {phone}.",
        "Il mio numero è {phone}, scrivimi a {email}.",
        "Proszę o kontakt: {phone}, e-mail {email}. Pozdrawiam, {name}",
        "Meu telefone é {phone} e meu e-mail {email}.",
        "お問い合わせ先: {name} 様 電話 {phone} メール {email}",
        "WARN auth failed user={email} src={ip} attempts={n} at {neg}",
        "{neg} INFO session started from {ip} ({ip6})",
        "Login from new device {mac} at {ip} for {email}",
        "Device IMEI {imei} was reported stolen by {name}.",
        "SSN on file for {name}: {ssn}. DOB {date}.",
        "Applicant {name}, social security number {ssn}, born {date}.",
        "National Insurance number {nino} for {name}, {addr}.",
        "Employee NI no: {nino}; payroll ref {neg}.",
        "CRM note: spoke to {first} ({phone}), wants invoices sent to {email}. {neg2}",
        "Forwarding the token for debugging: {jwt}",
        "Rotated the leaked key {key} — please update the CI secret.",
        "The server at {ip} rejected {neg} twice.",
        "Contact {name} via {email} or {phone2}.",
        "{name}, {addr}, tel {phone}, {email}",
        "I paid with {cc} on {date} and still have no confirmation for {neg}.",
        "Please update my phone to {phone} and my email to {email}.",
        "Client IP {ip6} exceeded the rate limit; {neg}.",
        "Account {email} linked to card {cc}, IBAN {iban}.",
        "Hey {first}! text me at {phone} :)",
        "From: {name} <{email}>\nSubject: {neg}\n\nPlease call {phone}.",
    ]
    L = fill(r, r.choice(T), V)
    return L, "free_text", None


def neg_text_line(r):
    fn, ln, name = vals_common(r, "US")
    V = {"name": ("I:PERSON", name), "first": ("I:PERSON", fn), "addr": ("I:ADDRESS", r.choice(STREETS)),
         "a": (None, neg_number(r)), "b": (None, neg_number(r)), "c": (None, neg_number(r)),
         "date": ("I:DATE_TIME", dob(r))}
    T = [
        "Status update: {a}, {b}.",
        "{a} — {b} — {c}",
        "Hi {first}, your {a} has shipped. {b}.",
        "Log: {a} worker=3 {b} retry={c}",
        "{name} at {addr} asked about {a}.",
        "Release notes: {a}; fixed {b}.",
        "Meeting moved to {date}; see {a}.",
        "Totals: {a} / {b} / {c}",
        "Rechnung {a}, Betrag {b}.",
        "Commande {a}, montant {b}.",
        "Pedido {a} enviado; {b}.",
        "{a}",
    ]
    L = fill(r, r.choice(T), V)
    return L, "free_text", "probe2_text_lookalike"


# ---------------------------------------------------------------- set b: templates written after the
# first round of fixes, to check that those generalise rather than fit set a's sentences

def neg_number_b(r):
    d = lambda n: digits(r, n)
    return r.choice([
        lambda: f"PO {r.choice(['45', '47'])}{d(8)}",
        lambda: f"Vorgang {d(4)}/{d(6)}",
        lambda: f"dossier n° {d(2)}-{d(6)}",
        lambda: f"expediente {d(5)}/{r.randint(2019, 2026)}",
        lambda: f"ordine #{d(9)}",
        lambda: f"{r.randint(1, 28)}/{r.randint(1, 12)}/{r.randint(19, 26)}",
        lambda: f"{r.randint(1, 28)} {r.choice(['Jan', 'März', 'avril', 'mayo', 'giugno'])} {r.randint(2019, 2026)}",
        lambda: f"{r.randint(1, 23)}h{r.randint(10, 59)}",
        lambda: f"uptime {r.randint(1, 999)}:{r.randint(10, 59)}:{r.randint(10, 59)}",
        lambda: f"{r.randint(1, 99)}.{d(3)}.{d(3)} Besucher",
        lambda: f"{r.randint(1, 9)} {d(3)} {d(3)} {d(3)} octets",
        lambda: f"{r.randint(1, 99)},{d(2)},{d(3)} views",
        lambda: f"lakh count {r.randint(1, 99)},{d(2)},{d(3)}",
        lambda: f"node v{r.randint(14, 22)}.{r.randint(0, 20)}.{r.randint(0, 9)}",
        lambda: f"kernel {r.randint(4, 6)}.{r.randint(0, 19)}.{r.randint(0, 200)}-{r.randint(1, 150)}-generic",
        lambda: f"image tag {r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{d(8)}",
        lambda: f"UUID {uuid4(r)}",
        lambda: f"sha1 {'%040x' % r.getrandbits(160)}",
        lambda: f"block {d(8)} hash 0x{'%064x' % r.getrandbits(256)}",
        lambda: f"ISSN {d(4)}-{d(3)}{r.choice('0123456789X')}",
        lambda: f"DOI 10.{d(4)}/{d(6)}",
        lambda: f"Steuernummer {d(2)}/{d(3)}/{d(5)}",
        lambda: f"NIF {d(8)}{r.choice(string.ascii_uppercase)}",
        lambda: f"{d(2)}{r.choice(string.ascii_uppercase)}{r.choice(string.ascii_uppercase)}{d(4)}",
        lambda: f"room {r.randint(100, 999)}, floor {r.randint(1, 40)}",
        lambda: f"temp {r.uniform(-20, 40):.2f}°C, humidity {r.uniform(10, 99):.1f}%",
        lambda: f"{r.uniform(1, 89):.5f} {r.uniform(1, 179):.5f} px",
        lambda: f"weights [{r.uniform(0, 1):.4f}, {r.uniform(0, 1):.4f}, {r.uniform(0, 1):.4f}]",
        lambda: f"CVE-{r.randint(2015, 2026)}-{d(5)}",
        lambda: f"RFC {r.randint(1000, 9999)} §{r.randint(1, 9)}.{r.randint(1, 9)}.{r.randint(1, 9)}.{r.randint(1, 9)}",
        lambda: f"MAC-Adresse unbekannt, Port {r.randint(1, 48)}",
        lambda: f"Kundennummer {d(8)}",
        lambda: f"numéro de facture {d(10)}",
        lambda: f"número de pedido {d(10)}",
        lambda: f"bestelnummer {d(10)}",
        lambda: f"Sendungsnummer {d(12)}",
        lambda: f"AWB {d(3)}-{d(8)}",
        lambda: f"{r.randint(1, 9)}.{d(3)},{d(2)} zł brutto",
        lambda: f"total ₹ {r.randint(1, 9)},{d(2)},{d(3)}",
        lambda: f"¥{r.randint(1, 99)},{d(3)} (税込)",
        lambda: f"{r.randint(1, 99)}億{r.randint(1, 9999)}万円",
    ])()


def free_text_line_b(r):
    loc = r.choice(["US", "UK", "DE", "FR", "ES", "NL", "IT", "PL", "IN", "BR", "JP"])
    fn, ln, name = vals_common(r, loc)
    V = {"name": ("I:PERSON", name), "first": ("I:PERSON", fn), "addr": ("I:ADDRESS", r.choice(STREETS)),
         "phone": ("E:PHONE", phone(r, loc)), "email": ("E:EMAIL", email(r, fn, ln)),
         "cc": ("E:CREDIT_CARD", card(r)), "iban": ("E:IBAN", iban(r, {"UK": "GB", "US": None, "IN": None, "JP": None}.get(loc, loc))),
         "ip": ("E:IP_ADDRESS", ipv4(r)), "ip6": ("E:IP_ADDRESS", ipv6(r)), "ssn": ("E:US_SSN", ssn(r)),
         "nino": ("E:NATIONAL_ID", nino(r)), "mac": ("E:DEVICE_ID", mac(r)), "imei": ("E:DEVICE_ID", imei(r)),
         "date": ("I:DATE_TIME", dob(r)), "neg": (None, neg_number_b(r)), "neg2": (None, neg_number_b(r)),
         "port": (None, str(r.randint(1024, 65535)))}
    T = [
        "Dear {name},\nthank you for your order ({neg}). We will call you on {phone} to arrange delivery to {addr}.",
        "Sehr geehrte Frau {name}, Ihre Rufnummer {phone} wurde aktualisiert. {neg}",
        "Bonjour {first}, votre numéro {phone} est bien enregistré ({neg}).",
        "Hola {first}, te escribo desde {email}; mi móvil es {phone}.",
        "Beste {first}, je kunt me bellen op {phone} of mailen naar {email}.",
        "Gentile {name}, la contatteremo al numero {phone}.",
        "Dzień dobry, mój telefon: {phone}, {neg}.",
        "Olá {first}! Meu celular: {phone}. {neg}",
        "{name} 様、ご登録の携帯番号 {phone} 宛にSMSを送信しました。",
        "Namaste {first}, your registered mobile {phone} is linked to {email}.",
        "[{neg}] ERROR payment declined card={cc} ip={ip}:{port}",
        "audit: user <{email}> changed IBAN to {iban} from {ip6}",
        "Please don't share: my SSN is {ssn} and my DOB is {date}.",
        "NI number: {nino}. Employer ref {neg}.",
        "Bluetooth pairing failed for {mac}; {neg2}.",
        "IMEI: {imei} (dual SIM), {neg}",
        "mailto:{email}?subject=Invoice",
        "Reply-To: \"{name}\" <{email}>",
        "Card on file: {cc}, billing contact {phone}.",
        "{neg}; {neg2}; reach {first} at {phone}",
        "Tel.: {phone} · Fax: {phone} · E-Mail: {email}",
        "{name}\n{addr}\n{phone}\n{email}",
        "Überweisung an {iban}, Verwendungszweck {neg}.",
        "Virement sur {iban} — {neg}.",
        "Connected from {ip} port {port} ({neg})",
    ]
    L = fill(r, r.choice(T), V)
    return L, "free_text", None


def neg_text_line_b(r):
    fn, ln, name = vals_common(r, "US")
    V = {"name": ("I:PERSON", name), "first": ("I:PERSON", fn), "addr": ("I:ADDRESS", r.choice(STREETS)),
         "a": (None, neg_number_b(r)), "b": (None, neg_number_b(r)), "c": (None, neg_number_b(r))}
    T = ["{a}", "{a}, {b}", "Hinweis: {a} — {b}", "Note to {first}: {a}; {b}.", "{name} ({addr}) — {a}",
         "Remarque : {a}, puis {b}.", "Nota: {a} y {b}.", "[{a}] {b} {c}", "Update: {a}. Next: {b}."]
    L = fill(r, r.choice(T), V)
    return L, "free_text", "probe2b_text_lookalike"


# ---------------------------------------------------------------- HTTP payloads

def json_line(r, negative=False):
    """A JSON object with typed values. Spans are on the string contents (or the bare number)."""
    fn, ln, name = vals_common(r, "US")
    loc = r.choice(["US", "UK", "DE", "FR", "ES", "NL", "IT", "PL", "IN", "BR", "JP"])
    pos = [
        ("email", ("EMAIL", email(r, fn, ln))), ("contactEmail", ("EMAIL", email(r))),
        ("phone", ("PHONE", phone(r, loc))), ("mobileNumber", ("PHONE", phone(r, loc))),
        ("telefon", ("PHONE", phone(r, "DE"))), ("first_name", ("PERSON", fn)), ("lastName", ("PERSON", ln)),
        ("full_name", ("PERSON", name)), ("customerName", ("PERSON", name)), ("nom", ("PERSON", ln)),
        ("dob", ("DATE_OF_BIRTH", dob(r))), ("birthDate", ("DATE_OF_BIRTH", dob(r))),
        ("date_of_birth", ("DATE_OF_BIRTH", dob(r))), ("iban", ("IBAN", iban(r))),
        ("card_number", ("CREDIT_CARD", card(r))), ("pan", ("CREDIT_CARD", card(r).replace(" ", ""))),
        ("ssn", ("US_SSN", ssn(r))), ("ip", ("IP_ADDRESS", ipv4(r))), ("client_ip", ("IP_ADDRESS", ipv4(r))),
        ("remoteAddr", ("IP_ADDRESS", ipv6(r))), ("mac", ("DEVICE_ID", mac(r))), ("imei", ("DEVICE_ID", imei(r))),
        ("device_id", ("DEVICE_ID", uuid4(r))), ("deviceId", ("DEVICE_ID", uuid4(r))),
        ("lat", ("GEO_COORDINATE", float(coord(r, 90)))), ("lng", ("GEO_COORDINATE", float(coord(r, 180)))),
        ("latitude", ("GEO_COORDINATE", coord(r, 90))), ("longitude", ("GEO_COORDINATE", coord(r, 180))),
        ("access_token", ("AUTH_TOKEN", jwt(r))), ("api_key", ("AUTH_TOKEN", apikey(r))),
        ("nino", ("NATIONAL_ID", nino(r))),
        ("note", ("EMAIL", email(r))),
    ]
    negs = [
        ("order_id", None, bad_luhn16(r)), ("orderNumber", None, int(digits(r, 10))),
        ("created_at", None, f"2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T10:{r.randint(10, 59)}:00Z"),
        ("updated", None, 1600000000 + r.randint(0, 199999999)), ("amount", None, round(r.uniform(1, 99999), 2)),
        ("total", None, f"{r.randint(1, 999)},{digits(r, 3)}.{digits(r, 2)}"), ("currency", None, "EUR"),
        ("app_version", None, f"{r.randint(1, 9)}.{r.randint(0, 40)}.{r.randint(0, 20)}.{r.randint(0, 255)}"),
        ("sdkVersion", None, f"{r.randint(1, 20)}.{r.randint(0, 9)}.{r.randint(0, 99)}"),
        ("request_id", None, uuid4(r)), ("trace_id", None, "%032x" % r.getrandbits(128)),
        ("etag", None, "%040x" % r.getrandbits(160)), ("isbn", None, "978" + digits(r, 10)),
        ("zip", None, digits(r, 5)), ("postcode", None, r.choice(["SW1A 1AA", "10115", "75008", "01310-200", "400001"])),
        ("x", None, round(r.uniform(0, 90), 5)), ("y", None, round(r.uniform(0, 180), 5)),
        ("score", None, round(r.uniform(0, 1), 6)), ("ratio", None, [round(r.uniform(-90, 90), 4), round(r.uniform(-180, 180), 4)]),
        ("page", None, r.randint(1, 50)), ("count", None, r.randint(1, 9999999)), ("sku", None, digits(r, 13)),
        ("seq", None, int(digits(r, 12))), ("status", None, "shipped"), ("locale", None, r.choice(["de-DE", "fr-FR", "pt-BR", "ja-JP"])),
        ("build", None, f"{r.randint(10, 99)}.{r.randint(0, 9)}.{r.randint(1000, 9999)}.{r.randint(1, 200)}"),
        ("date", None, r.choice([f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/2024", "2024-03-05", "05.03.2024"])),
        ("duration", None, f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"),
        ("hash", None, "%064x" % r.getrandbits(256)), ("invoice", None, f"INV-{r.randint(2019, 2026)}-{digits(r, 6)}"),
    ]
    items = []
    if not negative:
        for k, (t, v) in r.sample(pos, r.randint(1, 4)):
            items.append((k, t, v))
    for k, t, v in r.sample(negs, r.randint(2 if not negative else 3, 6)):
        items.append((k, t, v))
    r.shuffle(items)
    wrap = r.choice(["", "data", "customer", "user", "payload"])
    L = Line()
    indent = r.random() < 0.3
    sep = ",\n  " if indent else ", "
    L.t("{\n  " if indent else "{")
    if wrap:
        L.t(f'"{wrap}": {{')
    for n, (k, t, v) in enumerate(items):
        if n:
            L.t(sep)
        L.t(json.dumps(k) + ": ")
        if isinstance(v, str):
            L.t('"')
            enc = json.dumps(v, ensure_ascii=False)[1:-1]
            (L.e(t, enc) if t else L.t(enc))
            L.t('"')
        else:
            enc = json.dumps(v)
            (L.e(t, enc) if t else L.t(enc))
    if wrap:
        L.t("}")
    L.t("\n}" if indent else "}")
    return L, "json", "probe2_json_lookalike" if negative else None


def http_line_c(r):
    """Set c: HTTP payload shapes written after the fixes (nested JSON, arrays, numbers as
    numbers, header forms RFC 7239 and Basic auth, query pairs)."""
    fn, ln, name = vals_common(r, "US")
    k = r.randint(0, 7)
    L = Line()
    if k == 0:
        lat, lng = coord(r, 90), coord(r, 180)
        L.t('{"type": "Feature", "geometry": {"type": "Point", "coordinates": [').e("GEO_COORDINATE", lng).t(", ")
        L.e("GEO_COORDINATE", lat).t(']}, "properties": {"name": "Depot ' + str(r.randint(1, 99)) + '", "capacity": ')
        L.t(str(r.randint(100, 99999)) + ', "bbox_ratio": ' + "%.5f" % r.uniform(0, 1) + "}}")
        return L, "json", None
    if k == 1:
        L.t('{"contacts": [{"name": "').e("PERSON", name).t('", "emails": ["').e("EMAIL", email(r, fn, ln))
        L.t('"], "phones": [{"type": "mobile", "value": "').e("PHONE", phone(r, r.choice(["DE", "FR", "UK", "BR", "JP"])))
        L.t('"}]}], "total": ' + str(r.randint(1, 999)) + ', "next_cursor": "' + b64u(r, 24) + '"}')
        return L, "json", None
    if k == 2:
        L.t('{"event": "checkout", "ts": ' + str(1700000000000 + r.randint(0, 10 ** 10)) + ', "amount_cents": ')
        L.t(str(r.randint(100, 9999999)) + ', "user": {"id": ' + str(r.randint(10 ** 6, 10 ** 9)) + ', "phone_number": "')
        L.e("PHONE", phone(r, "US")).t('", "ip": "').e("IP_ADDRESS", ipv6(r)).t('"}}')
        return L, "json", None
    if k == 3:
        L.t("Host: api.example.net\r\nForwarded: for=").e("IP_ADDRESS", ipv4(r)).t(";proto=https;by=10.0.0.1\r\n")
        L.t("Authorization: Basic ").e("AUTH_TOKEN", b64u(r, 28).replace("-", "a").replace("_", "b") + "==").t("\r\n")
        L.t("Accept: */*\r\nX-Build: " + "%d.%d.%d.%d" % (r.randint(1, 9), r.randint(0, 9), r.randint(0, 99), r.randint(100, 9999)) + "\r\n")
        # the "by" address is the proxy's own, in 10/8: also an address
        L.ents.append({"type": "IP_ADDRESS", "start": L.s.index(";by=") + 4, "end": L.s.index(";by=") + 12})
        L.ents.sort(key=lambda e: e["start"])
        return L, "headers", None
    if k == 4:
        L.t("/maps/search?ll=").e("GEO_COORDINATE", coord(r, 90) + "%2C" + coord(r, 180))
        L.t("&z=" + str(r.randint(3, 18)) + "&q=" + pct("coffee near me") + "&hl=de&gl=DE")
        return L, "query", None
    if k == 5:
        L.t('{"items": [{"sku": "' + digits(r, 12) + '", "qty": 2, "price": "1.299,00"}, {"sku": "')
        L.t(digits(r, 13) + '", "qty": 1, "price": "12.345,67"}], "coupon": null, "order_id": ' + bad_luhn16(r))
        L.t(', "created": "' + "%02d.%02d.%d %02d:%02d" % (r.randint(1, 28), r.randint(1, 12), r.randint(2020, 2026), r.randint(0, 23), r.randint(0, 59)) + '"}')
        return L, "json", "probe2c_json_lookalike"
    if k == 6:
        L.t("Host: cdn.example.com\r\nUser-Agent: Dalvik/2.1.0 (Linux; U; Android 13; SM-S918B Build/TP1A.220624.014)\r\n")
        L.t("X-Client-Version: " + "%d.%d.%d (%d)" % (r.randint(1, 9), r.randint(0, 40), r.randint(0, 9), r.randint(1000, 99999)) + "\r\n")
        L.t("If-Modified-Since: Wed, 21 Oct 2015 07:28:00 GMT\r\nX-Amz-Date: 20240305T142209Z\r\n")
        L.t("X-Amz-Content-Sha256: " + "%064x" % r.getrandbits(256) + "\r\nRange: bytes=0-" + str(r.randint(1000, 99999999)) + "\r\n")
        return L, "headers", "probe2c_header_lookalike"
    L.t("firstName=").e("PERSON", pct(fn)).t("&lastName=").e("PERSON", pct(ln)).t("&iban=").e("IBAN", pct(iban(r)))
    L.t("&amount=" + pct("1.250,00") + "&execution_date=2024-07-01&reference=" + pct("Rechnung 2024-0815"))
    return L, "form", None


def pct(s, plus=True):
    out = ""
    for ch in s:
        if ch.isalnum() and ch.isascii() or ch in "-._~":
            out += ch
        elif ch == " " and plus:
            out += "+"
        else:
            out += "".join("%%%02X" % b for b in ch.encode())
    return out


def query_line(r, negative=False):
    fn, ln, name = vals_common(r, "US")
    pos = [("email", "EMAIL", email(r, fn, ln)), ("phone", "PHONE", phone(r, r.choice(["US", "DE", "FR", "IN", "BR"]))),
           ("name", "PERSON", name), ("lat", "GEO_COORDINATE", coord(r, 90)), ("lon", "GEO_COORDINATE", coord(r, 180)),
           ("device_id", "DEVICE_ID", uuid4(r)), ("ip", "IP_ADDRESS", ipv4(r)), ("access_token", "AUTH_TOKEN", jwt(r)),
           ("iban", "IBAN", iban(r)), ("dob", "DATE_OF_BIRTH", dob(r)), ("ssn", "US_SSN", ssn(r))]
    negs = [("page", str(r.randint(1, 40))), ("order_id", bad_luhn16(r)), ("v", f"{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)}.{r.randint(0, 200)}"),
            ("ts", str(1600000000 + r.randint(0, 199999999))), ("sort", "price"), ("since", "2024-03-05"),
            ("amount", f"{r.randint(1, 9)}%2C{digits(r, 3)}.{digits(r, 2)}"), ("zip", digits(r, 5)),
            ("request_id", uuid4(r)), ("sku", digits(r, 13)), ("lang", "pt-BR"), ("q", pct("iphone 15 pro 256gb")),
            ("x", f"{r.uniform(0, 90):.4f}"), ("y", f"{r.uniform(0, 180):.4f}"), ("sig", "%040x" % r.getrandbits(160)),
            ("from", "05%2F03%2F2024"), ("limit", str(r.choice([50, 100, 1000])))]
    items = [] if negative else [(k, t, v) for k, t, v in r.sample(pos, r.randint(1, 3))]
    items += [(k, None, v) for k, v in r.sample(negs, r.randint(2, 5))]
    r.shuffle(items)
    L = Line().t(r.choice(["/api/v1/search", "/v2/customers", "/track", "/checkout/confirm", "/geo/nearby"]) + "?")
    for n, (k, t, v) in enumerate(items):
        if n:
            L.t("&")
        L.t(k + "=")
        if t:
            L.e(t, pct(v))
        else:
            L.t(v)
    return L, "query", "probe2_query_lookalike" if negative else None


def form_line(r, negative=False):
    fn, ln, name = vals_common(r, "US")
    pos = [("email", "EMAIL", email(r, fn, ln)), ("phone", "PHONE", phone(r, r.choice(["UK", "NL", "IT", "PL"]))),
           ("full_name", "PERSON", name), ("card_number", "CREDIT_CARD", card(r)), ("iban", "IBAN", iban(r)),
           ("birthday", "DATE_OF_BIRTH", dob(r))]
    negs = [("quantity", str(r.randint(1, 9))), ("coupon", "SPRING24"), ("order_ref", bad_luhn16(r)),
            ("csrf", b64u(r, 32)), ("delivery_date", "2024-05-17"), ("postcode", pct("SW1A 1AA")),
            ("amount", pct(f"1.{digits(r, 3)},{digits(r, 2)}")), ("agree", "on")]
    items = [] if negative else [(k, t, v) for k, t, v in r.sample(pos, r.randint(1, 3))]
    items += [(k, None, v) for k, v in r.sample(negs, r.randint(2, 4))]
    r.shuffle(items)
    L = Line()
    for n, (k, t, v) in enumerate(items):
        if n:
            L.t("&")
        L.t(k + "=")
        (L.e(t, pct(v)) if t else L.t(v))
    return L, "form", "probe2_form_lookalike" if negative else None


def header_line(r, negative=False):
    L = Line()
    L.t(f"Host: api.{r.choice(['shop', 'crm', 'pay'])}.example.com\r\n")
    h = []
    if not negative:
        opts = [("Authorization", "Bearer ", "AUTH_TOKEN", jwt(r)),
                ("Authorization", "Bearer ", "AUTH_TOKEN", b64u(r, 40)),
                ("X-Api-Key", "", "AUTH_TOKEN", apikey(r)),
                ("X-Forwarded-For", "", "IP_ADDRESS", ipv4(r)),
                ("X-Real-IP", "", "IP_ADDRESS", ipv4(r)),
                ("X-Device-Id", "", "DEVICE_ID", uuid4(r)),
                ("X-User-Email", "", "EMAIL", email(r)),
                ("Cookie", "theme=dark; sessionid=", "AUTH_TOKEN", b64u(r, 32))]
        for name, pre, t, v in r.sample(opts, r.randint(1, 3)):
            h.append((name, pre, t, v))
    negh = [("User-Agent", f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{r.randint(100, 131)}.0.{r.randint(4000, 6999)}.{r.randint(10, 250)} Safari/537.36"),
            ("X-Request-Id", uuid4(r)), ("Accept-Language", "de-DE,de;q=0.9,en;q=0.8"), ("If-None-Match", '"%032x"' % r.getrandbits(128)),
            ("X-App-Version", f"{r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 9)}.{r.randint(100, 999)}"),
            ("Date", "Tue, 05 Mar 2024 14:22:09 GMT"), ("Content-Length", str(r.randint(10, 99999))),
            ("X-Trace", "%032x" % r.getrandbits(128)), ("Cookie", f"_ga=GA1.2.{r.randint(10**8, 10**9)}.{1600000000 + r.randint(0, 10**8)}; lang=fr"),
            ("X-Correlation-Id", f"{digits(r, 4)}-{digits(r, 4)}-{digits(r, 4)}-{digits(r, 4)}")]
    for name, v in r.sample(negh, r.randint(2, 4)):
        h.append((name, "", None, v))
    r.shuffle(h)
    for name, pre, t, v in h:
        L.t(f"{name}: {pre}")
        (L.e(t, v) if t else L.t(v))
        L.t("\r\n")
    return L, "headers", "probe2_header_lookalike" if negative else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--set", choices=["a", "b", "c"], default="a",
                    help="a: the templates the first fixes were made against; b (prose) and c (HTTP): "
                         "written after them")
    a = ap.parse_args()
    r = random.Random(a.seed)
    if a.set in ("b", "c"):
        makers = [(free_text_line_b, 50), (neg_text_line_b, 50)] if a.set == "b" else [(http_line_c, 1)]
        fns = [f for f, w in makers for _ in range(w)]
        for k in range(a.n):
            L, ctx, nk = r.choice(fns)(r)
            if not L.ents and nk is None:
                nk = "no_in_scope_pii"
            print(json.dumps({"id": "probe2%s-%05d" % (a.set, k), "text": L.s, "entities": L.ents, "ignore": L.ign,
                              "label_scope": "all", "context": ctx, "negative_kind": nk if not L.ents else None,
                              "source": SRC + " set " + a.set}, ensure_ascii=False))
        return
    makers = [(free_text_line, 35), (neg_text_line, 30), (lambda r: json_line(r), 8), (lambda r: json_line(r, True), 7),
              (lambda r: query_line(r), 4), (lambda r: query_line(r, True), 4), (lambda r: form_line(r), 3),
              (lambda r: form_line(r, True), 2), (lambda r: header_line(r), 4), (lambda r: header_line(r, True), 3)]
    fns = [f for f, w in makers for _ in range(w)]
    for k in range(a.n):
        L, ctx, nk = r.choice(fns)(r)
        if not L.ents and nk is None:
            nk = "no_in_scope_pii"
        print(json.dumps({"id": "probe2-%05d" % k, "text": L.s, "entities": L.ents, "ignore": L.ign,
                          "label_scope": "all", "context": ctx, "negative_kind": nk if not L.ents else None,
                          "source": SRC}, ensure_ascii=False))


if __name__ == "__main__":
    main()
