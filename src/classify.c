/*
 * classify.c — the classifier: routes headers, the target and the body to value scanners and
 * runs the detectors (validators in detect.c; JSON walked on json_core.h's tokenizer). One pass over each
 * part: values with key context (JSON path, form/query name, cookie name, header name) are
 * checked by key rules first, then every value goes through one text scanner that tries the
 * pattern detectors only at token starts (digits, '+', '(', letters of known prefixes).
 * Findings are byte spans into the caller's buffers; overlapping spans resolve to the longest.
 * Per call, the JSON walk remembers raw values that found nothing (a repeat is not rescanned);
 * key rules are cached per call and, for common raw spellings, in the classifier (built at create).
 * Pure: no globals, no clocks; the classifier is read-only after create. Any thread.
 */
#include "classify.h"

#include "json.h"
#include "json_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__) && !defined(BG_NO_SIMD)
#include <emmintrin.h>
#endif
#include <zlib.h>

/* ------------------------------------------------------------------------------------------ */
/* Detector table and key rules                                                               */

static const struct {
    const char *name;
    uint8_t cat;
} builtin[BG_DET__BUILTIN] = {
    {"email", BG_CAT_IDENTIFIER},       {"phone", BG_CAT_IDENTIFIER},      {"ip_address", BG_CAT_DEVICE},
    {"card_number", BG_CAT_FINANCIAL},  {"iban", BG_CAT_FINANCIAL},        {"us_ssn", BG_CAT_IDENTIFIER},
    {"uk_nino", BG_CAT_IDENTIFIER},     {"jwt", BG_CAT_CREDENTIAL},        {"bearer_token", BG_CAT_CREDENTIAL},
    {"api_key", BG_CAT_CREDENTIAL},     {"session_cookie", BG_CAT_CREDENTIAL}, {"coordinates", BG_CAT_LOCATION},
    {"mac_address", BG_CAT_DEVICE},     {"imei", BG_CAT_DEVICE},           {"device_id", BG_CAT_DEVICE},
    {"user_agent", BG_CAT_DEVICE},      {"client_ip", BG_CAT_DEVICE},      {"person_name", BG_CAT_IDENTIFIER},
    {"date_of_birth", BG_CAT_IDENTIFIER}, {"ai_prompt", BG_CAT_AI_INTERACTION}, {"file_upload", BG_CAT_CONTENT},
};

/* Key flags: what a JSON key, form/query parameter, cookie or header name says about its value. */
enum {
    K_NAME = 1u << 0,      /* a person's name (first_name, holder_name ...) */
    K_NAME_BARE = 1u << 1, /* "name": a person's unless the object is a product */
    K_PRODUCT = 1u << 2,   /* a sibling that makes "name" a product's (sku, price ...) */
    K_NONPERSON = 1u << 3, /* a parent key whose "name" is not a person's (product, company ...) */
    K_DOB = 1u << 4,
    K_PHONE = 1u << 5,
    K_LAT = 1u << 6,
    K_LNG = 1u << 7,
    K_GEO = 1u << 8,       /* holds a "lat,lon" pair */
    K_DEVICE = 1u << 9,
    K_IMEI = 1u << 10,
    K_CRED = 1u << 11,
    K_SSN = 1u << 12,
    K_NINO = 1u << 13,
    K_VERSION = 1u << 14,  /* dotted numbers here are versions, not IPv4 */
    K_IDNUM = 1u << 15,    /* numbers here are ids/timestamps, not cards or phones */
    K_AI = 1u << 16,       /* messages/prompt/input/content on an AI route */
    K_AI_TEXT = 1u << 17,  /* text/parts below an AI key */
    K_CUSTOM = 1u << 18,
    K_GEOARR = 1u << 19,   /* set by the JSON walk: an array element under a K_GEO key */
    /* header names */
    H_SKIP = 1u << 20,
    H_UA = 1u << 21,
    H_CLIENTIP = 1u << 22,
    H_AUTH = 1u << 23,
    H_COOKIE = 1u << 24,
    H_APIKEY = 1u << 25,
    H_SESSION = 1u << 26,
    H_URL = 1u << 27,
    K_ID = 1u << 28,       /* "id": a device's under a K_DEVOBJ key ({"device": {"id": ...}}) */
    K_DEVOBJ = 1u << 29,   /* "device": its object's "id" is a device id */
    /* Not a rule: the raw key holds a digit or an '@', so it may itself be a value
     * (name_may_hold_value). Kept with the rules so the key caches hold it; key_info_s's
     * callers take it off (key_nameval) before the flags mean rules. */
    K_NAMEVAL = 1u << 30,
};

static const struct {
    const char *key; /* normalized: lowercase letters and digits only */
    uint32_t flags;
} key_rules[] = {
    {"name", K_NAME_BARE},
    {"firstname", K_NAME}, {"lastname", K_NAME}, {"fullname", K_NAME}, {"surname", K_NAME},
    {"givenname", K_NAME}, {"familyname", K_NAME}, {"middlename", K_NAME}, {"holdername", K_NAME},
    {"cardholder", K_NAME}, {"cardholdername", K_NAME}, {"accountholder", K_NAME},
    {"accountholdername", K_NAME}, {"displayname", K_NAME}, {"maidenname", K_NAME}, {"fname", K_NAME},
    {"lname", K_NAME}, {"forename", K_NAME}, {"nameoncard", K_NAME}, {"contactname", K_NAME}, {"customername", K_NAME},
    {"billingname", K_NAME}, {"shippingname", K_NAME}, {"recipientname", K_NAME}, {"sendername", K_NAME},
    {"patientname", K_NAME}, {"personname", K_NAME}, {"legalname", K_NAME}, {"realname", K_NAME},
    /* the same keys in French, Spanish, Portuguese, Italian, German, Dutch, Polish: the bare
     * word for "name" reads as "name" does (a product's among product keys) */
    {"nom", K_NAME_BARE}, {"nombre", K_NAME_BARE}, {"nome", K_NAME_BARE}, {"naam", K_NAME_BARE},
    {"prenom", K_NAME}, {"nomdefamille", K_NAME}, {"nomcomplet", K_NAME}, {"apellido", K_NAME},
    {"apellidos", K_NAME}, {"nombrecompleto", K_NAME}, {"sobrenome", K_NAME}, {"nomecompleto", K_NAME},
    {"cognome", K_NAME}, {"vorname", K_NAME}, {"nachname", K_NAME}, {"familienname", K_NAME},
    {"voornaam", K_NAME}, {"achternaam", K_NAME}, {"imie", K_NAME}, {"nazwisko", K_NAME},
    {"sku", K_PRODUCT | K_IDNUM}, {"price", K_PRODUCT}, {"productid", K_PRODUCT | K_IDNUM},
    {"productname", K_PRODUCT}, {"brand", K_PRODUCT | K_NONPERSON}, {"quantity", K_PRODUCT}, {"qty", K_PRODUCT},
    /* the product keys in French, Spanish, Portuguese, Italian, German, Dutch, Polish (accents
     * folded: prix, précio -> precio, quantité -> quantite, ilość -> ilosc) */
    {"prix", K_PRODUCT}, {"precio", K_PRODUCT}, {"preco", K_PRODUCT}, {"prezzo", K_PRODUCT}, {"preis", K_PRODUCT},
    {"prijs", K_PRODUCT}, {"cena", K_PRODUCT}, {"quantite", K_PRODUCT}, {"cantidad", K_PRODUCT},
    {"quantidade", K_PRODUCT}, {"quantita", K_PRODUCT}, {"menge", K_PRODUCT}, {"anzahl", K_PRODUCT},
    {"aantal", K_PRODUCT}, {"ilosc", K_PRODUCT}, {"artikelnummer", K_PRODUCT | K_IDNUM},
    {"marque", K_PRODUCT | K_NONPERSON}, {"marca", K_PRODUCT | K_NONPERSON}, {"marke", K_PRODUCT | K_NONPERSON},
    {"produit", K_PRODUCT | K_NONPERSON}, {"producto", K_PRODUCT | K_NONPERSON}, {"prodotto", K_PRODUCT | K_NONPERSON},
    {"produto", K_PRODUCT | K_NONPERSON}, {"produkt", K_PRODUCT | K_NONPERSON},
    {"upc", K_PRODUCT | K_IDNUM}, {"ean", K_PRODUCT | K_IDNUM}, {"gtin", K_PRODUCT | K_IDNUM},
    {"category", K_PRODUCT | K_NONPERSON}, {"model", K_PRODUCT | K_NONPERSON}, {"variant", K_PRODUCT},
    {"stock", K_PRODUCT}, {"unitprice", K_PRODUCT}, {"listprice", K_PRODUCT}, {"catalog", K_PRODUCT},
    {"inventory", K_PRODUCT}, {"manufacturer", K_PRODUCT}, {"itemid", K_PRODUCT | K_IDNUM},
    {"product", K_PRODUCT | K_NONPERSON}, {"products", K_NONPERSON}, {"item", K_NONPERSON},
    {"items", K_NONPERSON}, {"company", K_NONPERSON}, {"organization", K_NONPERSON},
    {"organisation", K_NONPERSON}, {"org", K_NONPERSON}, {"merchant", K_NONPERSON}, {"vendor", K_NONPERSON},
    {"app", K_NONPERSON}, {"application", K_NONPERSON}, {"file", K_NONPERSON}, {"files", K_NONPERSON},
    {"event", K_NONPERSON}, {"plan", K_NONPERSON}, {"project", K_NONPERSON}, {"team", K_NONPERSON},
    {"service", K_NONPERSON}, {"store", K_NONPERSON}, {"shop", K_NONPERSON}, {"tag", K_NONPERSON},
    {"tags", K_NONPERSON}, {"group", K_NONPERSON}, {"country", K_NONPERSON}, {"city", K_NONPERSON},
    {"region", K_NONPERSON}, {"repository", K_NONPERSON}, {"repo", K_NONPERSON}, {"package", K_NONPERSON},
    {"dataset", K_NONPERSON}, {"device", K_NONPERSON | K_DEVOBJ}, {"browser", K_NONPERSON}, {"os", K_NONPERSON},
    {"platform", K_NONPERSON}, {"campaign", K_NONPERSON}, {"metric", K_NONPERSON}, {"field", K_NONPERSON},
    {"attribute", K_NONPERSON}, {"feature", K_NONPERSON}, {"bank", K_NONPERSON}, {"currency", K_NONPERSON},
    /* objects whose "name" titles a thing: offers, files, places, lists, settings ("Summer Sale",
     * "Photo Front.jpg", "Berlin Mitte", "Loyalty Tier") */
    {"offer", K_NONPERSON}, {"offers", K_NONPERSON}, {"coupon", K_NONPERSON}, {"promotion", K_NONPERSON},
    {"promo", K_NONPERSON}, {"discount", K_NONPERSON}, {"segment", K_NONPERSON}, {"audience", K_NONPERSON},
    {"template", K_NONPERSON}, {"attachment", K_NONPERSON}, {"attachments", K_NONPERSON},
    {"document", K_NONPERSON}, {"documents", K_NONPERSON}, {"folder", K_NONPERSON}, {"image", K_NONPERSON},
    {"images", K_NONPERSON}, {"media", K_NONPERSON}, {"asset", K_NONPERSON}, {"assets", K_NONPERSON},
    {"channel", K_NONPERSON}, {"venue", K_NONPERSON}, {"warehouse", K_NONPERSON}, {"site", K_NONPERSON},
    {"locations", K_NONPERSON}, {"survey", K_NONPERSON}, {"question", K_NONPERSON}, {"option", K_NONPERSON},
    {"options", K_NONPERSON}, {"stage", K_NONPERSON}, {"pipeline", K_NONPERSON}, {"role", K_NONPERSON},
    {"permission", K_NONPERSON}, {"webhook", K_NONPERSON}, {"integration", K_NONPERSON},
    {"customfield", K_NONPERSON}, {"customfields", K_NONPERSON}, {"label", K_NONPERSON}, {"labels", K_NONPERSON},
    /* {"name": "Loyalty Tier", "value": "Gold"}: a name/value pair names a field */
    {"value", K_PRODUCT},
    {"dob", K_DOB}, {"birthdate", K_DOB}, {"dateofbirth", K_DOB}, {"birthday", K_DOB}, {"bday", K_DOB},
    {"phone", K_PHONE}, {"tel", K_PHONE}, {"telephone", K_PHONE}, {"mobile", K_PHONE}, {"msisdn", K_PHONE},
    {"cell", K_PHONE}, {"cellphone", K_PHONE}, {"phonenumber", K_PHONE}, {"mobilenumber", K_PHONE},
    {"fax", K_PHONE}, {"telefon", K_PHONE}, {"telefono", K_PHONE}, {"whatsapp", K_PHONE}, {"portable", K_PHONE},
    {"telefone", K_PHONE}, {"telefoon", K_PHONE}, {"handy", K_PHONE}, {"movil", K_PHONE},
    {"celular", K_PHONE}, {"cellulare", K_PHONE}, {"mobiel", K_PHONE}, {"gsm", K_PHONE},
    {"lat", K_LAT}, {"latitude", K_LAT}, {"lng", K_LNG}, {"lon", K_LNG}, {"long", K_LNG}, {"longitude", K_LNG},
    {"location", K_GEO | K_NONPERSON}, {"loc", K_GEO}, {"position", K_GEO}, {"pos", K_GEO}, {"coords", K_GEO},
    {"coordinates", K_GEO}, {"coordinate", K_GEO}, {"geo", K_GEO}, {"gps", K_GEO}, {"geolocation", K_GEO},
    {"lastfix", K_GEO}, {"fix", K_GEO}, {"latlng", K_GEO}, {"latlon", K_GEO}, {"lnglat", K_GEO},
    {"ll", K_GEO}, {"geopoint", K_GEO}, {"lastlocation", K_GEO}, {"currentlocation", K_GEO},
    {"deviceid", K_DEVICE}, {"idfa", K_DEVICE}, {"idfv", K_DEVICE}, {"gaid", K_DEVICE}, {"adid", K_DEVICE},
    {"aaid", K_DEVICE}, {"advertisingid", K_DEVICE}, {"androidid", K_DEVICE}, {"udid", K_DEVICE},
    {"deviceuuid", K_DEVICE}, {"hardwareid", K_DEVICE}, {"installationid", K_DEVICE}, {"installid", K_DEVICE},
    {"macaddress", K_DEVICE}, {"mac", K_DEVICE}, {"wifimac", K_DEVICE}, {"bssid", K_DEVICE},
    {"imei", K_DEVICE | K_IMEI}, {"imeisv", K_DEVICE | K_IMEI}, {"meid", K_DEVICE},
    {"xdeviceid", K_DEVICE}, {"ifa", K_DEVICE}, {"maid", K_DEVICE}, {"mobileadid", K_DEVICE}, {"devicetoken", K_DEVICE}, {"pushtoken", K_DEVICE},
    {"apikey", K_CRED}, {"apisecret", K_CRED}, {"secret", K_CRED}, {"clientsecret", K_CRED},
    {"token", K_CRED}, {"accesstoken", K_CRED}, {"refreshtoken", K_CRED}, {"idtoken", K_CRED},
    {"authtoken", K_CRED}, {"sessiontoken", K_CRED}, {"bearertoken", K_CRED}, {"password", K_CRED},
    {"passwd", K_CRED}, {"pwd", K_CRED}, {"passphrase", K_CRED}, {"privatekey", K_CRED},
    {"secretkey", K_CRED}, {"auth", K_CRED}, {"sessionid", K_CRED}, {"sessid", K_CRED}, {"sid", K_CRED},
    {"jwt", K_CRED}, {"credential", K_CRED}, {"credentials", K_CRED},
    {"ssn", K_SSN}, {"socialsecuritynumber", K_SSN}, {"socialsecurity", K_SSN}, {"ssnumber", K_SSN},
    {"nino", K_NINO}, {"ninumber", K_NINO}, {"nationalinsurancenumber", K_NINO}, {"nationalinsurance", K_NINO},
    {"v", K_VERSION}, {"ver", K_VERSION}, {"version", K_VERSION}, {"appversion", K_VERSION},
    {"osversion", K_VERSION}, {"sdkversion", K_VERSION}, {"build", K_VERSION}, {"osbuild", K_VERSION},
    {"buildnumber", K_VERSION}, {"release", K_VERSION}, {"firmware", K_VERSION}, {"fw", K_VERSION},
    {"clientversion", K_VERSION}, {"apiversion", K_VERSION}, {"oid", K_VERSION}, {"section", K_VERSION},
    {"id", K_IDNUM | K_ID}, {"orderid", K_IDNUM}, {"ordernumber", K_IDNUM}, {"order", K_IDNUM},
    {"trackingnumber", K_IDNUM}, {"tracking", K_IDNUM}, {"trackingid", K_IDNUM}, {"invoice", K_IDNUM},
    {"invoiceid", K_IDNUM}, {"invoicenumber", K_IDNUM}, {"reference", K_IDNUM}, {"ref", K_IDNUM},
    {"isbn", K_IDNUM}, {"requestid", K_IDNUM}, {"traceid", K_IDNUM}, {"spanid", K_IDNUM},
    {"correlationid", K_IDNUM}, {"transactionid", K_IDNUM}, {"txid", K_IDNUM}, {"timestamp", K_IDNUM},
    {"ts", K_IDNUM}, {"createdat", K_IDNUM}, {"updatedat", K_IDNUM}, {"count", K_IDNUM}, {"total", K_IDNUM},
    {"seq", K_IDNUM}, {"page", K_IDNUM}, {"perpage", K_IDNUM}, {"ticket", K_IDNUM}, {"batch", K_IDNUM}, {"etag", K_IDNUM},
    {"messages", K_AI}, {"prompt", K_AI}, {"prompts", K_AI}, {"input", K_AI}, {"inputs", K_AI},
    {"content", K_AI}, {"contents", K_AI}, {"instructions", K_AI}, {"system", K_AI},
    {"text", K_AI_TEXT}, {"parts", K_AI_TEXT},
    /* header names (normalized) */
    {"host", H_SKIP}, {"contenttype", H_SKIP}, {"contentlength", H_SKIP}, {"contentencoding", H_SKIP},
    {"transferencoding", H_SKIP}, {"connection", H_SKIP}, {"keepalive", H_SKIP}, {"te", H_SKIP},
    {"trailer", H_SKIP}, {"upgrade", H_SKIP}, {"xrequestid", H_SKIP | K_IDNUM}, {"requestid", H_SKIP | K_IDNUM},
    {"xcorrelationid", H_SKIP}, {"correlationid", H_SKIP | K_IDNUM}, {"traceparent", H_SKIP}, {"tracestate", H_SKIP},
    {"b3", H_SKIP}, {"xamzntraceid", H_SKIP}, {"xcloudtracecontext", H_SKIP}, {"cachecontrol", H_SKIP},
    {"pragma", H_SKIP}, {"ifnonematch", H_SKIP}, {"ifmatch", H_SKIP}, {"ifmodifiedsince", H_SKIP},
    {"ifunmodifiedsince", H_SKIP}, {"expect", H_SKIP}, {"date", H_SKIP}, {"xforwardedproto", H_SKIP},
    {"xforwardedhost", H_SKIP}, {"xforwardedport", H_SKIP}, {"via", H_SKIP}, {"dnt", H_SKIP},
    {"upgradeinsecurerequests", H_SKIP}, {"origin", H_SKIP}, {"priority", H_SKIP}, {"range", H_SKIP},
    {"idempotencykey", H_SKIP}, {"xidempotencykey", H_SKIP}, {"contentmd5", H_SKIP}, {"digest", H_SKIP},
    {"xhttpmethodoverride", H_SKIP}, {"xrequestedwith", H_SKIP}, {"xb3traceid", H_SKIP},
    {"xb3spanid", H_SKIP}, {"xb3parentspanid", H_SKIP}, {"xb3sampled", H_SKIP}, {"xtraceid", H_SKIP},
    {"useragent", H_UA}, {"xforwardedfor", H_CLIENTIP}, {"xrealip", H_CLIENTIP}, {"forwarded", H_CLIENTIP},
    {"trueclientip", H_CLIENTIP}, {"cfconnectingip", H_CLIENTIP}, {"xclientip", H_CLIENTIP},
    {"xoriginalforwardedfor", H_CLIENTIP}, {"xclusterclientip", H_CLIENTIP}, {"fastlyclientip", H_CLIENTIP},
    {"authorization", H_AUTH}, {"proxyauthorization", H_AUTH}, {"cookie", H_COOKIE},
    {"xapikey", H_APIKEY}, {"apikey", H_APIKEY}, {"xauthtoken", H_APIKEY}, {"xaccesstoken", H_APIKEY},
    {"xgoogapikey", H_APIKEY}, {"xamzsecuritytoken", H_APIKEY}, {"privatetoken", H_APIKEY},
    {"ocpapimsubscriptionkey", H_APIKEY}, {"xfunctionskey", H_APIKEY}, {"xapitoken", H_APIKEY},
    {"xsessiontoken", H_SESSION}, {"xsessionid", H_SESSION}, {"referer", H_URL}, {"location", H_URL},
};

#define KEY_MAX 40
#define KT_SIZE 1024 /* power of two, > 2x the rules */

typedef struct {
    char key[KEY_MAX + 1];
    uint8_t len;
    uint32_t flags;
    int16_t custom; /* custom detector index or -1 */
} kslot_t;

typedef struct {
    char *name;
    uint8_t cat;
    char *prefix;
    size_t prefix_len;
    int digits;
    bool has_keys;
} custom_t;

struct bg_classifier {
    unsigned ndet;
    const char **names; /* built-in names are static; custom ones point into custom[] */
    uint8_t *cats;
    bool *enabled;
    custom_t *custom;
    size_t ncustom;
    kslot_t *kt; /* open addressing, len 0 = empty */
    struct rkcache *rkg; /* raw spellings of common keys → rules, filled at create (rk_global_fill) */
};

static inline unsigned lower(unsigned c) { return c - 'A' < 26u ? c + 32 : c; }

/* Keys are written in the caller's language: "prénom", "teléfono", "imię", "Straße". A Latin
 * letter with a diacritic (UTF-8 c3 80 .. c5 bf: Latin-1 and Latin Extended-A) normalizes to
 * its base letter(s), so those keys meet the rules written without accents ("prenom",
 * "telefono", "imie"). Returns the ASCII letters for the two bytes at k (NULL: not such a
 * letter; "" for the signs × and ÷, which are dropped as punctuation is). */
static const char *key_fold(const unsigned char *k, size_t n)
{
    /* U+00C0 .. U+00FF, then U+0100 .. U+017F: one base letter each, a few two. */
    static const char l1[] = "aaaaaaAceeeeiiiidnooooo*ouuuuyTSaaaaaaAceeeeiiiidnooooo*ouuuuyTy";
    static const char xa[] = "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiiiIIjjkkklllllll"
                             "lllnnnnnnnnnooooooOOrrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzs";
    if (n < 2 || k[0] < 0xc3 || k[0] > 0xc5 || (k[1] & 0xc0) != 0x80)
        return NULL;
    unsigned cp = ((k[0] & 0x1fu) << 6 | (k[1] & 0x3fu));
    char c = cp < 0x100 ? l1[cp - 0xc0] : xa[cp - 0x100];
    switch (c) {
    case '*': return "";
    case 'A': return "ae"; /* æ */
    case 'T': return "th"; /* þ */
    case 'S': return "ss"; /* ß */
    case 'I': return "ij"; /* ĳ */
    case 'O': return "oe"; /* œ */
    default: break;
    }
    static const char one[26][2] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m",
                                    "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z"};
    return one[c - 'a'];
}

/* Normalize a key to lowercase letters and digits (at most KEY_MAX), accented Latin letters
 * folded (key_fold); returns its length. */
static size_t key_norm(const char *k, size_t n, char out[KEY_MAX + 1])
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < KEY_MAX; i++) {
        unsigned c = lower((unsigned char)k[i]);
        if ((c - 'a' < 26u) || (c - '0' < 10u)) {
            out[o++] = (char)c;
        } else if (c >= 0xc3) {
            const char *f = key_fold((const unsigned char *)k + i, n - i);
            if (f) {
                for (; *f && o < KEY_MAX; f++)
                    out[o++] = *f;
                i++;
            }
        }
    }
    out[o] = 0;
    return o;
}

static inline uint32_t key_hash(const char *k, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

static kslot_t *kt_slot_h(kslot_t *kt, const char *k, size_t n, bool insert, uint32_t h)
{
    h &= KT_SIZE - 1;
    for (unsigned probe = 0; probe < KT_SIZE; probe++, h = (h + 1) & (KT_SIZE - 1)) {
        kslot_t *s = &kt[h];
        if (s->len == 0)
            return insert ? s : NULL;
        if (s->len == n && memcmp(s->key, k, n) == 0)
            return s;
    }
    return NULL;
}

static kslot_t *kt_slot(kslot_t *kt, const char *k, size_t n, bool insert)
{
    return kt_slot_h(kt, k, n, insert, key_hash(k, n));
}

static void kt_add(kslot_t *kt, const char *k, size_t n, uint32_t flags, int custom)
{
    if (n == 0 || n > KEY_MAX)
        return;
    kslot_t *s = kt_slot(kt, k, n, true);
    if (!s)
        return;
    if (s->len == 0) {
        memcpy(s->key, k, n);
        s->key[n] = 0;
        s->len = (uint8_t)n;
        s->custom = -1;
    }
    s->flags |= flags;
    if (custom >= 0 && s->custom < 0)
        s->custom = (int16_t)custom;
}

static inline bool has(const char *k, size_t n, const char *sub)
{
    size_t l = strlen(sub);
    return l <= n && memmem(k, n, sub, l) != NULL;
}
static inline __attribute__((always_inline)) bool ends(const char *k, size_t n, const char *suf)
{
    size_t l = strlen(suf);
    return l <= n && memcmp(k + n - l, suf, l) == 0;
}

typedef struct {
    uint32_t flags;
    int custom;
} kinfo_t;

/* Word rules for compound keys the exact table does not hold (nk normalized, l >= 4). One pass
 * over the key, dispatching on each letter to the few words that start with it. */
enum { W_PHONE = 1, W_CRED = 2, W_NOCRED = 4, W_DEVICE = 8, W_IMEI = 16, W_DOB = 32, W_SSN = 64, W_NINO = 128,
       W_GEO = 256, W_AI = 512, W_ID = 1024, W_VERSION = 2048, W_PRODUCT = 4096 };

static inline bool at_word(const char *nk, size_t l, size_t i, const char *w, size_t wl)
{
    return i + wl <= l && memcmp(nk + i, w, wl) == 0;
}
#define AT(w) at_word(nk, l, i, w, sizeof w - 1)

/* Does nk[0, l) name a thing that has a version ("app" in app_ver)? */
static bool ver_owner(const char *nk, size_t l)
{
    static const char *const own[] = {"app", "sdk", "os", "sw", "fw", "hw", "lib", "api", "client", "plugin",
                                      "agent", "browser", "ext", "js", "kernel", "engine", "schema", "proto",
                                      "min", "max", "cur", "current", "target", "build", "bundle", "core"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (ends(nk, l, own[i]))
            return true;
    return false;
}

static kinfo_t key_words(const char *nk, size_t l)
{
    kinfo_t r = {0, -1};
    unsigned w = 0;
    for (size_t i = 0; i < l; i++) {
        switch (nk[i]) {
        case 'a':
            if (AT("apikey") || AT("accesstoken") || AT("authtoken"))
                w |= W_CRED;
            else if (AT("advertisingid"))
                w |= W_DEVICE;
            break;
        case 'b':
            if (AT("birth"))
                w |= W_DOB;
            else if (AT("bearertoken"))
                w |= W_CRED;
            break;
        case 'c':
            if (AT("csrf"))
                w |= W_NOCRED;
            else if (AT("coord"))
                w |= W_GEO;
            else if (AT("count") || AT("checksum"))
                w |= W_ID;
            break;
        case 'd':
            if (AT("deviceid"))
                w |= W_DEVICE;
            else if (AT("duration"))
                w |= W_ID;
            break;
        case 'h':
            if (AT("hardwareid"))
                w |= W_DEVICE;
            else if (AT("hash"))
                w |= W_ID;
            else if (AT("handy"))
                w |= W_PHONE; /* Handynummer */
            break;
        case 'k':
            if (AT("komork"))
                w |= W_PHONE; /* telefon komórkowy */
            break;
        case 'i':
            if (AT("imei"))
                w |= W_IMEI;
            else if (AT("idfa"))
                w |= W_DEVICE;
            else if (AT("invoice"))
                w |= W_ID;
            break;
        case 'l':
            if (AT("location") || AT("latlng") || AT("latlon"))
                w |= W_GEO;
            break;
        case 'm':
            if (AT("mobil") || AT("msisdn")) /* mobile, Mobilnummer, mobiltelefon */
                w |= W_PHONE;
            else if (AT("macaddress"))
                w |= W_DEVICE;
            break;
        case 'n':
            if (AT("nationalinsurance"))
                w |= W_NINO;
            else if (AT("naissance") || AT("nacimiento") || AT("nascita") || AT("nascimento"))
                w |= W_DOB; /* date de naissance, fecha de nacimiento, data di nascita / de nascimento */
            break;
        case 'g':
            if (AT("geburt") || AT("geboorte"))
                w |= W_DOB; /* Geburtsdatum, geboortedatum */
            break;
        case 'f':
            if (AT("fodsel"))
                w |= W_DOB; /* fødselsdato (da, no) */
            break;
        case 'o':
            if (AT("order"))
                w |= W_ID;
            break;
        case 'p':
            if (AT("phone"))
                w |= W_PHONE;
            else if (AT("password") || AT("passwd") || AT("privatekey"))
                w |= W_CRED;
            else if (AT("prompt"))
                w |= W_AI;
            else if (AT("product"))
                w |= W_PRODUCT; /* product_data, productDetails: their "name" is the product's */
            break;
        case 'r':
            if (AT("refreshtoken"))
                w |= W_CRED;
            else if (AT("reference"))
                w |= W_ID;
            break;
        case 's':
            if (AT("secret") || AT("sessiontoken") || AT("sessionid"))
                w |= W_CRED;
            else if (AT("socialsecurity"))
                w |= W_SSN;
            else if (AT("seq")) /* seq, seqno, sequence, sequence_number */
                w |= W_ID;
            break;
        case 't':
            if (AT("tracking") || AT("timestamp"))
                w |= W_ID;
            else if (AT("telef")) /* Telefonnummer, telefone_celular */
                w |= W_PHONE;
            break;
        case 'x':
            if (AT("xsrf"))
                w |= W_NOCRED;
            break;
        case 'u':
            if (AT("urodzen"))
                w |= W_DOB; /* data urodzenia */
            break;
        case 'v':
            if (AT("version"))
                w |= W_VERSION; /* versionName, version_string, CFBundleShortVersionString */
            break;
        default:
            break;
        }
    }
    /* mobile_os_version, phone_app_build: a version of something on the phone, not its number
     * ("26.5.158.136" would read as a dotted national number). */
    if ((w & W_PHONE) && ((w & W_VERSION) || ends(nk, l, "build")))
        w &= ~(unsigned)W_PHONE;
    if (w & W_PHONE)
        r.flags |= K_PHONE | (w & W_DEVICE ? K_DEVICE : 0); /* mobile_device_id: a device's id */
    else if ((w & W_CRED) && !(w & W_NOCRED))
        r.flags |= K_CRED;
    else if (w & W_DEVICE)
        r.flags |= K_DEVICE;
    else if (w & W_IMEI)
        r.flags |= K_DEVICE | K_IMEI;
    else if (w & W_DOB)
        r.flags |= K_DOB;
    else if (w & W_SSN)
        r.flags |= K_SSN;
    else if (w & W_NINO)
        r.flags |= K_NINO;
    else if (ends(nk, l, "latitude") || (l >= 5 && ends(nk, l, "lat")))
        r.flags |= K_LAT;
    else if (ends(nk, l, "longitude") || (l >= 5 && (ends(nk, l, "lng") || ends(nk, l, "lon"))))
        r.flags |= K_LNG;
    else if (ends(nk, l, "name") && l > 4) {
        static const char *const who[] = {"first", "last", "full", "given", "family", "middle", "holder",
                                          "display", "maiden", "contact", "customer", "recipient", "sender",
                                          "billing", "shipping", "person", "patient", "legal", "sur",
                                          "beneficiary", "payee", "payer", "creditor", "debtor", "owner",
                                          "applicant", "employee", "passenger", "traveler", "traveller",
                                          "guest", "insured", "spouse", "mother", "father", "member", "student",
                                          "author", "signer", "signatory", "witness", "guardian", "buyer",
                                          "consignee", "addressee", "attendee", "participant", "kin", "emergency",
                                          "doctor", "physician", "caregiver", "subscriber"};
        for (size_t i = 0; i < sizeof who / sizeof who[0]; i++)
            if (has(nk, l - 4, who[i]))
                r.flags |= K_NAME;
    } else if (ends(nk, l, "version") || ends(nk, l, "build"))
        r.flags |= K_VERSION;
    else if (w & W_GEO)
        r.flags |= K_GEO;
    else if (w & W_AI)
        r.flags |= K_AI;
    if (!r.flags && ((w & W_ID) || ends(nk, l, "id") || ends(nk, l, "ms") || ends(nk, l, "at") || ends(nk, l, "ts")))
        r.flags |= K_IDNUM;
    /* A version wherever the word is in the key ("versionName" ends in "name"), or "ver" after
     * what has one (app_ver, sdkVer; not server, driver, resolver: those hold addresses). Only
     * steers the text scan: dotted quads here are no IPv4. */
    if ((w & W_VERSION) || (l >= 5 && nk[l - 1] == 'r' && ends(nk, l, "ver") && ver_owner(nk, l - 3)))
        r.flags |= K_VERSION;
    if (w & W_PRODUCT)
        r.flags |= K_NONPERSON;
    return r;
}
#undef AT


/* Keys (normalised) seen on most requests; their word-rule results are memoised at create. */
static const char *const common_keys[] = {
    "host", "accept", "acceptencoding", "acceptlanguage", "xrequestid", "requestid", "cachecontrol",
    "contenttype", "contentlength", "contentencoding", "connection", "pragma", "origin", "xcorrelationid",
    "correlationid", "traceparent", "tracestate", "xb3traceid", "xforwardedproto", "forwardedproto",
    "xforwardedhost", "forwardedhost", "xforwardedport", "forwardedport", "ifnonematch", "ifmodifiedsince",
    "date", "etag", "upgradeinsecurerequests", "expect", "range", "xamzdate", "amzdate",
    "xamzcontentsha256", "amzcontentsha256", "idempotencykey", "stripeversion", "anthropicversion",
    "openaiorganization", "openaiproject", "keepalive", "transferencoding", "xhttpmethodoverride",
    "page", "perpage", "pagesize", "limit", "offset", "sort", "order", "fields", "filter", "include",
    "expand", "cursor", "status", "type", "kind", "created", "createdat", "updatedat", "updatedatms",
    "timestamp", "data", "items", "results", "total", "count", "description", "title", "tags",
    "metadata", "metrics", "views", "ratio", "priority", "active", "score", "price", "quantity", "sku",
    "currency", "amount", "model", "temperature", "maxtokens", "stream", "role", "tools", "event",
    "events", "properties", "context", "locale", "language", "enabled", "value", "values", "label",
    "labels", "source", "target", "format", "options", "settings", "state", "code", "message",
};

static void rk_global_fill(bg_classifier_t *c);

bg_classifier_t *bg_classifier_create(const bg_config_t *cfg, char *err, size_t errlen)
{
    bg_classifier_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    size_t ncustom = cfg ? cfg->classification.ncustom : 0;
    c->ndet = BG_DET__BUILTIN + (unsigned)ncustom;
    c->names = calloc(c->ndet, sizeof *c->names);
    c->cats = calloc(c->ndet, 1);
    c->enabled = calloc(c->ndet, sizeof *c->enabled);
    c->custom = calloc(ncustom ? ncustom : 1, sizeof *c->custom);
    c->kt = calloc(KT_SIZE, sizeof *c->kt);
    if (!c->names || !c->cats || !c->enabled || !c->custom || !c->kt)
        abort();
    for (unsigned i = 0; i < BG_DET__BUILTIN; i++) {
        c->names[i] = builtin[i].name;
        c->cats[i] = builtin[i].cat;
        c->enabled[i] = !cfg || cfg->classification.all || cfg->classification.ndetectors == 0;
    }
    for (size_t i = 0; i < sizeof key_rules / sizeof key_rules[0]; i++)
        kt_add(c->kt, key_rules[i].key, strlen(key_rules[i].key), key_rules[i].flags, -1);
    for (size_t i = 0; i < ncustom; i++) {
        const bg_custom_detector_t *d = &cfg->classification.custom[i];
        custom_t *u = &c->custom[c->ncustom];
        if (!d->name || !*d->name) {
            snprintf(err, errlen, "custom detector %zu has no name", i + 1);
            goto fail;
        }
        for (unsigned k = 0; k < BG_DET__BUILTIN + c->ncustom; k++)
            if (strcmp(c->names[k], d->name) == 0) {
                snprintf(err, errlen, "custom detector '%s' repeats a detector name", d->name);
                goto fail;
            }
        if (d->category >= BG_CAT__COUNT) {
            snprintf(err, errlen, "custom detector '%s' has no valid category", d->name);
            goto fail;
        }
        if (d->nkeys == 0 && (!d->prefix || !*d->prefix)) {
            snprintf(err, errlen, "custom detector '%s' needs keys or a prefix", d->name);
            goto fail;
        }
        u->name = strdup(d->name);
        u->prefix = d->prefix && *d->prefix ? strdup(d->prefix) : NULL;
        if (!u->name || (d->prefix && *d->prefix && !u->prefix))
            abort();
        u->prefix_len = u->prefix ? strlen(u->prefix) : 0;
        u->digits = d->digits;
        u->cat = (uint8_t)d->category;
        u->has_keys = d->nkeys > 0;
        unsigned id = BG_DET__BUILTIN + (unsigned)c->ncustom;
        c->names[id] = u->name;
        c->cats[id] = u->cat;
        c->enabled[id] = true;
        c->ncustom++;
        for (size_t k = 0; k < d->nkeys; k++) {
            char nk[KEY_MAX + 1];
            size_t l = key_norm(d->keys[k], strlen(d->keys[k]), nk);
            kt_add(c->kt, nk, l, K_CUSTOM, (int)i);
        }
    }
    /* Common header, query and body keys get their word-rule result precomputed into the table
     * (only keys the table does not hold yet, so exact and custom rules are untouched): the
     * per-request path then finds them with one lookup instead of running the word rules. */
    for (size_t i = 0; i < sizeof common_keys / sizeof common_keys[0]; i++) {
        const char *k = common_keys[i];
        size_t l = strlen(k);
        if (l < 4 || l > KEY_MAX || kt_slot(c->kt, k, l, false))
            continue;
        kinfo_t r = key_words(k, l);
        kslot_t *e = kt_slot(c->kt, k, l, true);
        if (!e)
            break;
        memcpy(e->key, k, l);
        e->key[l] = 0;
        e->len = (uint8_t)l;
        e->flags = r.flags;
        e->custom = (int16_t)r.custom;
    }
    if (cfg && !cfg->classification.all) {
        for (size_t i = 0; i < cfg->classification.ndetectors; i++) {
            const char *nm = cfg->classification.detectors[i];
            int id = bg_classifier_detector_find(c, nm);
            if (id < 0) {
                snprintf(err, errlen, "unknown detector '%s'", nm);
                goto fail;
            }
            c->enabled[id] = true;
        }
    }
    rk_global_fill(c);
    return c;
fail:
    bg_classifier_destroy(c);
    return NULL;
}

void bg_classifier_destroy(bg_classifier_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ncustom; i++) {
        free(c->custom[i].name);
        free(c->custom[i].prefix);
    }
    free(c->custom);
    free(c->names);
    free(c->cats);
    free(c->enabled);
    free(c->kt);
    free(c->rkg);
    free(c);
}

unsigned bg_classifier_ndetectors(const bg_classifier_t *c) { return c->ndet; }

const char *bg_classifier_detector_name(const bg_classifier_t *c, unsigned id)
{
    return id < c->ndet ? c->names[id] : NULL;
}

int bg_classifier_detector_category(const bg_classifier_t *c, unsigned id)
{
    return id < c->ndet ? c->cats[id] : -1;
}

int bg_classifier_detector_find(const bg_classifier_t *c, const char *name)
{
    for (unsigned i = 0; i < c->ndet; i++)
        if (c->names[i] && strcmp(c->names[i], name) == 0)
            return (int)i;
    return -1;
}

const char *bg_where_name(int where)
{
    static const char *const n[] = {"header", "path", "query", "body"};
    return where >= 0 && where < 4 ? n[where] : "body";
}

const char *bg_body_kind_name(int kind)
{
    static const char *const n[] = {"none", "json", "form", "multipart", "text", "other"};
    return kind >= 0 && kind < 6 ? n[kind] : "other";
}

/* The findings array starts inside the counts block (one small malloc per exchange: with the
 * built-in detectors 84 + 11 x 80 bytes, within glibc's per-thread cache; no 80 KiB block for
 * the arena to grow and trim around) and grows x4 into its own block up to BG_MAX_FINDINGS.
 * findings_cap == FINDINGS_FIRST means the array is the inline one. */
#define FINDINGS_FIRST 11

static size_t counts_bytes(unsigned ndet)
{
    size_t n = ndet * sizeof(uint32_t), a = _Alignof(bg_finding_t);
    return (n + a - 1) / a * a;
}

void bg_classification_init(bg_classification_t *out, const bg_classifier_t *c)
{
    memset(out, 0, sizeof *out);
    size_t cb = counts_bytes(c->ndet);
    char *blk = malloc(cb + FINDINGS_FIRST * sizeof *out->findings);
    if (!blk)
        abort();
    memset(blk, 0, c->ndet * sizeof *out->counts);
    out->counts = (uint32_t *)(void *)blk;
    out->findings = (bg_finding_t *)(void *)(blk + cb);
    out->findings_cap = FINDINGS_FIRST;
    bg_buf_init(&out->inflated);
}

/* Findings at or past nfindings hold nothing: every place that drops findings (an overlap that
 * replaces them, the JSON attempt given up for text, a new bg_classify on the same out) wipes
 * them, so wiping [0, nfindings) wipes every byte that held a key or an offset. */
void bg_classification_dispose(bg_classification_t *out)
{
    if (out->findings)
        bg_wipe(out->findings, out->nfindings * sizeof *out->findings);
    if (out->findings_cap != FINDINGS_FIRST)
        free(out->findings);
    free(out->counts);
    bg_buf_dispose_secure(&out->inflated);
    memset(out, 0, sizeof *out);
}

/* Room for one more finding (nfindings == findings_cap < BG_MAX_FINDINGS): move the array to a
 * block four times larger; the old copy is wiped. */
__attribute__((noinline, cold)) static void findings_grow(bg_classification_t *out)
{
    size_t cap = out->findings_cap * 4;
    if (cap > BG_MAX_FINDINGS)
        cap = BG_MAX_FINDINGS;
    bg_finding_t *f = malloc(cap * sizeof *f);
    if (!f)
        abort();
    memcpy(f, out->findings, out->nfindings * sizeof *f);
    bg_wipe(out->findings, out->nfindings * sizeof *f);
    if (out->findings_cap != FINDINGS_FIRST)
        free(out->findings);
    out->findings = f;
    out->findings_cap = cap;
}

/* ------------------------------------------------------------------------------------------ */
/* Scan state and findings                                                                    */

#define MAX_FRAMES (BG_JSON_MAX_DEPTH + 1)
#define MAX_PENDING 64
#define RECENT 8 /* findings looked at for overlap: spans arrive in order within one value */

typedef struct {
    uint8_t is_obj;
    uint8_t product;     /* the object has a product-ish key */
    uint8_t key_value;   /* the current key is itself a value a detector hit: paths say "[key]" */
    uint32_t kflags;     /* object: flags of the current key; array: flags of the key holding it */
    uint32_t inherit;    /* flags inherited from ancestors (K_AI) */
    int custom;          /* custom detector of the current key */
    uint32_t key_off, key_len; /* current key in the body (raw) */
    uint32_t index;      /* array: element index (counted in objects too, never read there) */
    uint32_t serial;     /* which push made this frame (json_path's prefix cache) */
} frame_t;

typedef struct {
    unsigned depth;
    uint32_t off, len;
    bool encoded;
    char path[64];
} pending_t;

#define KCACHE 64 /* per-call cache of key rules: bodies repeat their keys */

typedef struct {
    uint32_t hash;
    uint8_t len;
    char key[KEY_MAX + 1];
    uint32_t flags;
    int custom;
} kcache_t;

#define RKCACHE 256 /* per-call cache of whole raw keys → rules: no normalising a repeated key */
#define RKEY_MAX 32

typedef struct rkcache {
    uint64_t a, b;       /* fingerprint (rk_print) */
    uint8_t len;         /* 0: empty */
    kinfo_t ki;
    char key[RKEY_MAX]; /* the bytes, kept only when len > 16 */
} rkcache_t;

#define RKG_BITS 11
#define RKG (1u << RKG_BITS) /* the classifier's raw-key table (filled at most half) */

/* Values scan_text looked at and found nothing in, per scan_json call: a body repeats its values
 * (notes, enums, currencies, free-text defaults), and the text detectors are a pure function of
 * the value's bytes and its key's flags (scan_value), so a repeat with the same key flags finds
 * nothing again. Only raw (unescaped) values, named by their first occurrence in the body, which
 * stays put during the walk; an entry is (rk_print fingerprint, length, flags), and the bytes are
 * compared when the fingerprint does not hold them all (n > 16). Fixed size: a full slot is
 * overwritten. */
#define QMEMO 64

typedef struct {
    uint64_t a, b;
    uint32_t off, len;
    uint32_t flags;
} qmemo_t;

typedef struct {
    const bg_classifier_t *c;
    bg_classification_t *out;
    kcache_t *kcache;
    uint64_t kc_valid;
    rkcache_t *rkcache;
    uint64_t rk_valid[RKCACHE / 64];
    const char *base;   /* the buffer offsets refer to */
    uint8_t where;
    uint16_t header;
    bool json_string;
    bool ai_route;
    bool skip_loc;      /* in->skip_locations: findings get no path text */
    bool cats_only;     /* inside a span already reported whole: record categories only */
    size_t cover;       /* with cats_only: the index of that finding, whose covers they join */
    bool binary;        /* a body of a type with no reader (bg_classify): its text scan skips the
                           shapes random bytes make by chance */
    size_t (*espan)[2]; /* e-mail spans of the value being scanned: the caller's ESPAN_FIRST
                           first, then a block of their own (espan_heap) grown x2 */
    size_t espan_cap;
    bool espan_heap;
    const char *path;   /* non-JSON path text */
    size_t path_len;
    frame_t *frames;    /* JSON only */
    unsigned nframes;
    /* json_path's cache: the path of frames [0, pc_top) while frame pc_top (pushed as pc_serial)
     * is on the stack (below it nothing changes until it is popped); pc_len < 0: none. */
    int pc_len;
    unsigned pc_top;
    uint32_t pc_serial;
    bool pc_stop;       /* the prefix ended at an object with no key yet */
    char pc[64];
    pending_t *pending;
    size_t npending;
    size_t recent_from; /* findings before this index are from another location */
    size_t nemit;       /* emit_path calls so far: a scan that leaves it unchanged found nothing */
    size_t max_end;     /* no finding added since recent_from was max_end_from ends after this */
    size_t max_end_from;
    qmemo_t *qmemo;     /* JSON only: values that found nothing (scan_value_memo) */
    uint64_t qm_valid;  /* which qmemo entries are filled */
    char *dec;          /* scratch for decoded values (wiped at the end) */
    uint32_t *map;
    size_t cap;
    unsigned depth;     /* base64-JSON values this scan is inside (scan_b64_json) */
    bool too_deep;      /* one more was nested past B64_NEST_MAX: unscannable */
} scan_t;

/* A value to scan: decoded text and how its bytes map back to the base buffer. */
typedef struct {
    size_t rawoff;       /* the value's offset in base */
    const unsigned char *t;
    size_t n;
    const uint32_t *map; /* NULL: identity; else map[k] = raw offset (from rawoff) of t[k], map[n] = raw len */
    bool plus;           /* form encoding: '+' is a space */
    bool not_quick;      /* text_quick_skip was asked and said no: scan_text need not ask again */
} val_t;

/* Whether a name (a JSON key, a query or form parameter name, a bare query item) may itself be
 * personal data: every validated detector's values hold a digit or an '@' (escaped ones too:
 * "%40", "\u0040"), while names are mostly letters, so only those are read as text. */
static inline bool name_may_hold_value(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned)(p[i] - '0') < 10 || p[i] == '@')
            return true;
    return false;
}

static kinfo_t key_rules_slow(scan_t *s, const char *k, size_t n);

/* The rules for raw key k and whether it may be a value. The caches above keep the result per
 * raw spelling, so a key's bytes are looked at for digits once per call (once per process for
 * the common keys), not at every occurrence. */
static kinfo_t key_info_slow(scan_t *s, const char *k, size_t n)
{
    kinfo_t r = key_rules_slow(s, k, n);
    if (name_may_hold_value(k, n))
        r.flags |= K_NAMEVAL;
    return r;
}

/* key_info with a per-call cache for the word rules (a body repeats its keys). */
static kinfo_t key_rules_slow(scan_t *s, const char *k, size_t n)
{
    char nk[KEY_MAX + 1];
    /* Normalize and hash in one pass (key_norm + key_hash): knorm maps a byte to the lowercase
     * letter or digit it keeps, 0 for the bytes dropped. */
    static const uint8_t knorm[256] = {
#define KN_L(c) [c] = c, [c - 32] = c
        KN_L('a'), KN_L('b'), KN_L('c'), KN_L('d'), KN_L('e'), KN_L('f'), KN_L('g'), KN_L('h'), KN_L('i'),
        KN_L('j'), KN_L('k'), KN_L('l'), KN_L('m'), KN_L('n'), KN_L('o'), KN_L('p'), KN_L('q'), KN_L('r'),
        KN_L('s'), KN_L('t'), KN_L('u'), KN_L('v'), KN_L('w'), KN_L('x'), KN_L('y'), KN_L('z'),
#undef KN_L
        ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4', ['5'] = '5', ['6'] = '6', ['7'] = '7',
        ['8'] = '8', ['9'] = '9'};
    size_t l = 0;
    uint32_t h = 2166136261u;
    unsigned any = 0; /* every byte ORed: a non-ASCII one may be an accented letter (key_fold) */
    for (size_t i = 0; i < n && l < KEY_MAX; i++) {
        unsigned c = knorm[(unsigned char)k[i]];
        any |= (unsigned char)k[i];
        if (c) {
            nk[l++] = (char)c;
            h = (h ^ c) * 16777619u;
        }
    }
    if (__builtin_expect(any >= 0x80, 0)) {
        l = key_norm(k, n, nk); /* the same letters and digits, accents folded */
        if (l > KEY_MAX)
            __builtin_unreachable(); /* key_norm's bound, for the copies of nk below */
        h = key_hash(nk, l);
    }
    nk[l] = 0;
    kinfo_t r = {0, -1};
    if (l == 0)
        return r;
    const kslot_t *e = kt_slot_h(s->c->kt, nk, l, false, h);
    if (e) {
        r.flags = e->flags;
        r.custom = e->custom;
        return r;
    }
    if (l < 4)
        return r;
    unsigned slot = h & (KCACHE - 1);
    kcache_t *kc = &s->kcache[slot];
    if ((s->kc_valid >> slot & 1) && kc->hash == h && kc->len == l && memcmp(kc->key, nk, l) == 0) {
        r.flags = kc->flags;
        r.custom = kc->custom;
        return r;
    }
    r = key_words(nk, l);
    kc->hash = h;
    kc->len = (uint8_t)l;
    memcpy(kc->key, nk, l);
    kc->flags = r.flags;
    kc->custom = r.custom;
    s->kc_valid |= 1ull << slot;
    return r;
}

/* A raw key's fingerprint: for n <= 16, (n, a, b) is the key itself (first and last eight bytes,
 * or overlapping halves / three bytes for shorter keys), so comparing it is an exact compare. */
static inline void rk_print(const char *k, size_t n, uint64_t *a, uint64_t *b)
{
    if (n >= 8) {
        memcpy(a, k, 8);
        memcpy(b, k + n - 8, 8);
    } else if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, k, 4);
        memcpy(&hi, k + n - 4, 4);
        *a = lo | (uint64_t)hi << 32;
        *b = 0;
    } else {
        *a = (unsigned char)k[0] | (uint64_t)(unsigned char)k[n / 2] << 8 | (uint64_t)(unsigned char)k[n - 1] << 16;
        *b = 0;
    }
}

#define RK_PROBES 4

static inline uint64_t rk_hash(uint64_t a, uint64_t b, size_t n)
{
    return (a * 0x9e3779b97f4a7c15ULL) ^ (b * 0xc2b2ae3d27d4eb4fULL) ^ (n * 0x165667b19e3779f9ULL);
}

/* The classifier's entry for raw key k with fingerprint (a, b) and hash h, or NULL. */
static inline const rkcache_t *rk_global(const bg_classifier_t *c, const char *k, size_t n, uint64_t a, uint64_t b,
                                         uint64_t h)
{
    for (unsigned p = 0, x = (unsigned)(h >> (64 - RKG_BITS)); p < RKG; p++, x = (x + 1) & (RKG - 1)) {
        const rkcache_t *e = &c->rkg[x];
        if (!e->len)
            return NULL;
        if (e->len == n && e->a == a && e->b == b && (n <= 16 || memcmp(e->key, k, n) == 0))
            return e;
    }
    return NULL;
}

/* Compute a raw key's rules and keep them in cache entry e under its fingerprint (a, b). */
static kinfo_t rk_fill(rkcache_t *e, scan_t *s, const char *k, size_t n, uint64_t a, uint64_t b)
{
    kinfo_t r = key_info_slow(s, k, n);
    e->len = (uint8_t)n;
    e->a = a;
    e->b = b;
    if (n > 16)
        memcpy(e->key, k, n);
    e->ki = r;
    return r;
}

/* Entry g into e: the key's bytes only when the fingerprint does not hold them all. */
static inline void rk_copy(rkcache_t *e, const rkcache_t *g)
{
    memcpy(e, g, offsetof(rkcache_t, key));
    if (g->len > 16)
        memcpy(e->key, g->key, g->len);
}

/* The rules for a raw key of 1..RKEY_MAX bytes with fingerprint (a, b) and hash h (key_info_s
 * made them): a small open-addressed cache over the exact bytes (the result is a pure function
 * of them), else normalise, hash and look up. */
static __attribute__((noinline)) kinfo_t key_info_probe(scan_t *s, const char *k, size_t n, uint64_t a, uint64_t b,
                                                         uint64_t h)
{
    unsigned slot = (unsigned)(h >> 56); /* RKCACHE == 256 */
    for (unsigned p = 0; p < RK_PROBES; p++) {
        unsigned x = (slot + p) & (RKCACHE - 1);
        rkcache_t *e = &s->rkcache[x];
        if (!(s->rk_valid[x / 64] >> (x % 64) & 1)) {
            /* Not cached: take the classifier's entry for a common key, else compute. */
            const rkcache_t *g = rk_global(s->c, k, n, a, b, h);
            kinfo_t r;
            if (g) {
                rk_copy(e, g);
                r = g->ki;
            } else {
                r = rk_fill(e, s, k, n, a, b);
            }
            s->rk_valid[x / 64] |= 1ull << (x % 64);
            return r;
        }
        if (e->len == n && e->a == a && e->b == b && (n <= 16 || memcmp(e->key, k, n) == 0))
            return e->ki;
    }
    /* The probe window is full (many distinct keys): overwrite its first slot. */
    const rkcache_t *g = rk_global(s->c, k, n, a, b, h);
    if (g) {
        rk_copy(&s->rkcache[slot], g);
        return g->ki;
    }
    return rk_fill(&s->rkcache[slot], s, k, n, a, b);
}

/* Raw spellings of keys most requests carry, beyond the rule and common keys themselves (which
 * are lowercase words, their own raw form): header names as HTTP/2 writes them and capitalised
 * ("x-request-id", "X-Request-Id"), snake_case keys also as camelCase. Only a cache: a key not
 * here gets the same rules computed per call. */
static const char *const common_raw_headers[] = {
    "host", "user-agent", "content-type", "content-length", "content-encoding", "transfer-encoding",
    "cache-control", "accept-encoding", "accept-language", "authorization", "cookie", "referer", "origin",
    "pragma", "date", "via", "range", "expect", "connection", "priority", "forwarded", "x-request-id",
    "x-correlation-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
    "x-real-ip", "if-none-match", "if-modified-since", "idempotency-key", "x-api-key", "x-amz-date",
    "x-amz-content-sha256", "stripe-version", "anthropic-version", "openai-organization", "openai-project",
    "keep-alive", "upgrade-insecure-requests", "x-b3-traceid", "x-trace-id", "traceparent", "tracestate",
};
static const char *const common_raw_keys[] = {
    "first_name", "last_name", "full_name", "display_name", "user_name", "username", "user_id", "customer_id",
    "account_id", "order_id", "product_id", "item_id", "request_id", "trace_id", "session_id", "device_id",
    "created_at", "updated_at", "deleted_at", "created_at_ms", "updated_at_ms", "date_of_birth",
    "phone_number", "email_address", "ip_address", "user_agent", "api_key", "access_token", "refresh_token",
    "per_page", "page_size", "max_tokens", "unit_price", "price_cents", "zip_code", "postal_code",
    "country_code", "email", "address", "ip", "customer", "user", "account", "note", "notes", "comment",
    "url", "path", "method", "lang", "timezone", "subtotal", "tax", "discount", "street", "zip", "phone",
    "object", "parent", "children", "error", "errors", "success", "result", "response", "request", "body",
    "payload", "attributes", "links", "self", "next", "prev", "meta", "q", "query", "search", "first",
    "after", "before", "since", "until",
    /* cookie names */
    "locale", "_ga", "_gid", "_fbp", "_gcl_au", "consent", "cookie_consent", "csrftoken", "csrf_token",
    "JSESSIONID", "PHPSESSID", "remember_me", "tz", "dark_mode",
};

/* Put raw key k (n bytes) in the classifier's table with the rules key_info_slow gives it. */
static void rk_global_add(bg_classifier_t *c, scan_t *s0, unsigned *used, const char *k, size_t n)
{
    if (n == 0 || n > RKEY_MAX || *used >= RKG / 2)
        return;
    uint64_t a, b;
    rk_print(k, n, &a, &b);
    uint64_t h = rk_hash(a, b, n);
    if (rk_global(c, k, n, a, b, h))
        return;
    unsigned x = (unsigned)(h >> (64 - RKG_BITS));
    while (c->rkg[x].len)
        x = (x + 1) & (RKG - 1);
    rk_fill(&c->rkg[x], s0, k, n, a, b);
    (*used)++;
}

static void rk_global_fill(bg_classifier_t *c)
{
    c->rkg = calloc(RKG, sizeof *c->rkg);
    if (!c->rkg)
        abort();
    kcache_t kcache[KCACHE];
    scan_t s0;
    memset(&s0, 0, sizeof s0);
    s0.c = c;
    s0.kcache = kcache;
    unsigned used = 0;
    size_t nh = sizeof common_raw_headers / sizeof common_raw_headers[0];
    for (size_t i = 0; i < nh + sizeof common_raw_keys / sizeof common_raw_keys[0]; i++) {
        bool hdr = i < nh;
        const char *k = hdr ? common_raw_headers[i] : common_raw_keys[i - nh];
        size_t n = strlen(k);
        char v[RKEY_MAX + 1];
        if (n > RKEY_MAX)
            continue;
        rk_global_add(c, &s0, &used, k, n);
        /* The other spelling: capitalised words for a header name, camelCase for snake_case. */
        bool up = hdr;
        size_t o = 0;
        for (size_t j = 0; j < n; j++) {
            if (!hdr && k[j] == '_') {
                up = true;
                continue;
            }
            v[o++] = up && k[j] >= 'a' && k[j] <= 'z' ? (char)(k[j] - 32) : k[j];
            up = hdr && k[j] == '-';
        }
        if (o != n || hdr)
            rk_global_add(c, &s0, &used, v, o);
    }
    for (size_t i = 0; i < sizeof key_rules / sizeof key_rules[0]; i++)
        rk_global_add(c, &s0, &used, key_rules[i].key, strlen(key_rules[i].key));
    for (size_t i = 0; i < sizeof common_keys / sizeof common_keys[0]; i++)
        rk_global_add(c, &s0, &used, common_keys[i], strlen(common_keys[i]));
}

/* The rules for raw key k, inline for the common cases: a common key at its home slot in the
 * classifier's table (read there: no per-call entry to fill, which cost ~100 Ir per distinct key
 * per call), else key_info_probe's first probe (a body repeats its keys). */
static inline __attribute__((always_inline)) kinfo_t key_info_raw(scan_t *s, const char *k, size_t n)
{
    if (n - 1 < RKEY_MAX) {
        uint64_t a, b;
        rk_print(k, n, &a, &b);
        uint64_t h = rk_hash(a, b, n);
        const rkcache_t *g = &s->c->rkg[h >> (64 - RKG_BITS)];
        if (g->len == n && g->a == a && g->b == b && (n <= 16 || memcmp(g->key, k, n) == 0))
            return g->ki;
        unsigned x = (unsigned)(h >> 56);
        const rkcache_t *e = &s->rkcache[x];
        if ((s->rk_valid[x / 64] >> (x % 64) & 1) && e->len == n && e->a == a && e->b == b &&
            (n <= 16 || memcmp(e->key, k, n) == 0))
            return e->ki;
        return key_info_probe(s, k, n, a, b, h);
    }
    return key_info_slow(s, k, n);
}

/* The rules for raw key k (K_NAMEVAL taken off: for callers that do not read names as values). */
static inline __attribute__((always_inline)) kinfo_t key_info_s(scan_t *s, const char *k, size_t n)
{
    kinfo_t r = key_info_raw(s, k, n);
    r.flags &= ~(uint32_t)K_NAMEVAL;
    return r;
}

static void scratch(scan_t *s, size_t n)
{
    if (n + 1 <= s->cap)
        return;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < n + 1)
        cap *= 2;
    if (s->dec)
        bg_wipe(s->dec, s->cap);
    free(s->dec);
    free(s->map);
    s->dec = malloc(cap);
    s->map = malloc(cap * sizeof *s->map);
    if (!s->dec || !s->map)
        abort();
    s->cap = cap;
}

/* dst[0, n) = src[0, n) for a short n without a call: two overlapping loads of 8 (or 4) bytes
 * cover 4..16 bytes; longer spans go to memcpy. Reads and writes only the n bytes. */
static inline void copy_short(char *dst, const char *src, size_t n)
{
    if (n >= 8 && n <= 16) {
        uint64_t x, y;
        memcpy(&x, src, 8);
        memcpy(&y, src + n - 8, 8);
        memcpy(dst, &x, 8);
        memcpy(dst + n - 8, &y, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t x, y;
        memcpy(&x, src, 4);
        memcpy(&y, src + n - 4, 4);
        memcpy(dst, &x, 4);
        memcpy(dst + n - 4, &y, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i];
    } else {
        memcpy(dst, src, n);
    }
}

/* Append frame fr's path segment (".key" or "[index]") to out at *o, bounded at 63 bytes.
 * False when fr is an object with no key yet: the path ends before it. */
static inline bool path_seg(const scan_t *s, const frame_t *fr, char out[64], size_t *o)
{
    if (fr->is_obj) {
        if (fr->key_len == (uint32_t)-1)
            return false;
        out[(*o)++] = '.';
        const char *k = fr->key_value ? "[key]" : s->base + fr->key_off;
        size_t klen = fr->key_value ? 5 : fr->key_len;
        size_t kl = klen < 63 - *o ? klen : 63 - *o;
        copy_short(out + *o, k, kl);
        *o += kl;
    } else {
        char tmp[16];
        int l = 0;
        uint32_t x = fr->index;
        tmp[l++] = ']';
        do {
            tmp[l++] = (char)('0' + x % 10);
            x /= 10;
        } while (x);
        tmp[l++] = '[';
        while (l > 0 && *o < 63)
            out[(*o)++] = tmp[--l];
    }
    return true;
}

/* The JSON path of the current value: "$" and each frame's segment, truncated at 63 bytes. The
 * frames below the top stay as they are while the top is on the stack, so their part is kept
 * (pc) and reused by the next value in the same object or array. */
static void json_path(scan_t *s, char out[64])
{
    unsigned top = s->nframes ? s->nframes - 1 : 0;
    if (s->pc_len < 0 || s->pc_top != top || !s->nframes || s->frames[top].serial != s->pc_serial) {
        size_t o = 0;
        bool stop = false;
        s->pc[o++] = '$';
        for (unsigned f = 0; f < top && o < 63; f++)
            if (!path_seg(s, &s->frames[f], s->pc, &o)) {
                stop = true;
                break;
            }
        s->pc_len = (int)o;
        s->pc_stop = stop;
        s->pc_top = top;
        s->pc_serial = s->nframes ? s->frames[top].serial : 0;
    }
    memcpy(out, s->pc, 64);
    size_t o = (size_t)s->pc_len;
    if (!s->pc_stop && s->nframes && o < 63)
        path_seg(s, &s->frames[top], out, &o);
    out[o] = 0;
}

static void set_path(bg_finding_t *f, scan_t *s, const char *path)
{
    if (s->skip_loc) {
        f->path[0] = 0;
        return;
    }
    if (path) {
        memcpy(f->path, path, 64);
    } else if (s->frames) {
        json_path(s, f->path);
    } else {
        size_t l = s->path_len < 63 ? s->path_len : 63;
        if (l)
            memcpy(f->path, s->path, l);
        f->path[l] = 0;
    }
}

/* emit_at's overlap rule for span [a, b) against findings [from, nfindings): false when a
 * recent finding in this location overlaps it and is at least as long (the span is dropped, its
 * categories added to that finding's covers); else every one it overlaps is removed (their
 * counts taken back, their slots wiped, their covers added to *covers). Either way the bytes of
 * every detection stay under one finding that names its category, so sealing by category never
 * leaves one in clear. Out of line: spans mostly arrive in order and overlap nothing. */
static __attribute__((noinline)) bool emit_overlap(scan_t *s, size_t from, size_t a, size_t b, uint16_t *covers)
{
    bg_classification_t *out = s->out;
    size_t len = b - a;
    for (size_t i = from; i < out->nfindings; i++) {
        bg_finding_t *f = &out->findings[i];
        if (f->where != s->where || f->header != s->header)
            continue;
        if (a < (size_t)f->offset + f->length && (size_t)f->offset < b) {
            if (len <= f->length) {
                f->covers |= *covers;
                return false;
            }
            /* The new span is longer: it replaces every recent finding it overlaps. */
            size_t w = from;
            for (size_t r = from; r < out->nfindings; r++) {
                bg_finding_t *g = &out->findings[r];
                if (g->where == s->where && g->header == s->header && a < (size_t)g->offset + g->length &&
                    (size_t)g->offset < b) {
                    out->counts[g->detector]--;
                    *covers |= g->covers;
                    continue;
                }
                out->findings[w++] = *g;
            }
            bg_wipe(&out->findings[w], (out->nfindings - w) * sizeof *out->findings);
            out->nfindings = w;
            break;
        }
    }
    return true;
}

/* Record a finding at base[off, off+len). Overlap with a recent finding keeps the longer
 * (the earlier on a tie); the category is recorded either way. Inlined into emit_v (most
 * findings come through it); emit_path is the called copy for the other sites. */
static inline __attribute__((always_inline)) void emit_at(scan_t *s, unsigned det, size_t off, size_t len,
                                                          bool encoded, const char *path)
{
    const bg_classifier_t *c = s->c;
    bg_classification_t *out = s->out;
    s->nemit++;
    if (det >= c->ndet || !c->enabled[det] || len == 0)
        return;
    out->categories |= 1u << c->cats[det];
    if (s->cats_only) {
        out->findings[s->cover].covers |= (uint16_t)(1u << c->cats[det]);
        return;
    }
    size_t a = off, b = off + len;
    /* Findings since recent_from all end at or before max_end: a span starting there overlaps
     * none of them (the common case: spans arrive in order), and the loop (and the window it
     * looks at) is skipped. */
    if (s->max_end_from != s->recent_from) {
        s->max_end_from = s->recent_from;
        s->max_end = 0;
    }
    size_t from = out->nfindings;
    if (a < s->max_end) {
        from = out->nfindings > RECENT ? out->nfindings - RECENT : 0;
        if (from < s->recent_from)
            from = s->recent_from;
    }
    uint16_t covers = (uint16_t)(1u << c->cats[det]);
    if (from < out->nfindings && !emit_overlap(s, from, a, b, &covers))
        return;
    out->counts[det]++;
    if (out->nfindings >= out->findings_cap) {
        if (out->nfindings >= BG_MAX_FINDINGS) {
            out->findings_truncated = true;
            return;
        }
        findings_grow(out);
    }
    bg_finding_t *f = &out->findings[out->nfindings++];
    if (b > s->max_end)
        s->max_end = b;
    f->detector = (uint16_t)det;
    f->category = c->cats[det];
    f->covers = covers;
    f->where = s->where;
    f->json_string = s->json_string;
    f->encoded = encoded;
    f->header = s->header;
    f->offset = (uint32_t)off;
    f->length = (uint32_t)len;
    set_path(f, s, path);
}

static __attribute__((noinline)) void emit_path(scan_t *s, unsigned det, size_t off, size_t len, bool encoded,
                                                const char *path)
{
    emit_at(s, det, off, len, encoded, path);
}

static inline size_t vmap(const val_t *v, size_t k) { return v->map ? v->map[k] : k; }

/* Emit decoded span t[a, b) of a value. */
static void emit_v(scan_t *s, unsigned det, const val_t *v, size_t a, size_t b)
{
    size_t ra = vmap(v, a), rb = vmap(v, b);
    bool enc = rb - ra != b - a || (v->plus && memchr(s->base + v->rawoff + ra, '+', rb - ra));
    emit_at(s, det, v->rawoff + ra, rb - ra, enc, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Character classes and small matchers                                                       */

enum { CD = 1, CU = 2, CL = 4, CHX = 8, CP = 16, CC = 32, CB = 64 };
#define CA (CD | CU | CL)
static const uint8_t cls[256] = {
    ['0' ... '9'] = CD | CHX,
    ['A' ... 'F'] = CU | CHX, ['G' ... 'Z'] = CU,
    ['a' ... 'f'] = CL | CHX, ['g' ... 'z'] = CL,
    ['+'] = CP, ['('] = CP, [':'] = CC,
    ['-'] = CB, ['_'] = CB,
};
/* First two letters of the API key prefixes apikey_at knows. */
static inline bool key_start(unsigned c, unsigned c1)
{
    switch (c) {
    case 's': return c1 == 'k';
    case 'r': return c1 == 'k';
    case 'w': return c1 == 'h';
    case 'A': return c1 == 'K' || c1 == 'S' || c1 == 'I';
    case 'g': return c1 == 'h' || c1 == 'i' || c1 == 'l';
    case 'x': return c1 == 'o';
    case 'S': return c1 == 'G';
    case 'h': return c1 == 'f';
    case 'n': return c1 == 'p';
    default: return false;
    }
}

static inline bool isd(unsigned c) { return c - '0' < 10u; }
static inline bool isal(unsigned c) { return (cls[c] & CA) != 0; }
static inline bool isletter(unsigned c) { return (cls[c] & (CU | CL)) != 0; }
static inline bool ishx(unsigned c) { return (cls[c] & CHX) != 0; }
static inline bool is_b64url(unsigned c) { return (cls[c] & (CA | CB)) != 0; }

/* kw_in for keyword lists that do not all start with a letter: every position, every keyword. */
static bool kw_in_slow(const unsigned char *t, size_t a, size_t b, const char *const *kws, size_t nkw, bool word)
{
    for (size_t k = 0; k < nkw; k++) {
        const unsigned char *w = (const unsigned char *)kws[k];
        size_t kl = strlen(kws[k]);
        if (kl > b - a)
            continue;
        for (size_t x = a; x + kl <= b; x++) {
            if (word && x > 0 && isletter(t[x - 1]))
                continue;
            size_t y = 0;
            while (y < kl && lower(t[x + y]) == w[y])
                y++;
            if (y == kl)
                return true;
        }
    }
    return false;
}

/* Does a keyword (lowercase) occur in t[a, b), compared case-insensitively, and with word, only where a
 * word starts (no letter before it, even before a: "hotel" holds no "tel", "during" no "ring"; a digit
 * may be: "1120born")? In
 * place: no copy, no memmem; a first-byte test rejects almost every position. */
static bool kw_in(const unsigned char *t, size_t a, size_t b, const char *const *kws, size_t nkw, bool word)
{
    if (a >= b)
        return false; /* an empty window (a number at the start of a value) holds no keyword */
    /* The keywords' first letters: one pass over the window finds the few places to compare. */
    uint32_t firsts = 0;
    for (size_t k = 0; k < nkw; k++) {
        unsigned f = (unsigned char)kws[k][0];
        if (f - 'a' >= 26u)
            return kw_in_slow(t, a, b, kws, nkw, word);
        firsts |= 1u << (f - 'a');
    }
    for (size_t x = a; x < b; x++) {
        unsigned c = lower(t[x]) - 'a';
        if (c >= 26u || !(firsts >> c & 1) || (word && x > 0 && isletter(t[x - 1])))
            continue;
        for (size_t k = 0; k < nkw; k++) {
            const unsigned char *w = (const unsigned char *)kws[k];
            if ((unsigned)w[0] - 'a' != c)
                continue;
            size_t y = 1;
            while (w[y] && x + y < b && lower(t[x + y]) == w[y])
                y++;
            if (!w[y])
                return true;
        }
    }
    return false;
}

/* Does a word start with a keyword (lowercase) within `win` bytes before t[i]? (At most 96 bytes
 * are looked at.) */
static bool kw_before(const unsigned char *t, size_t i, size_t win, const char *const *kws, size_t nkw)
{
    size_t from = i > win ? i - win : 0;
    size_t to = i - from > 96 ? from + 96 : i;
    return kw_in(t, from, to, kws, nkw, true);
}

static bool kw_after(const unsigned char *t, size_t n, size_t e, size_t win, const char *const *kws, size_t nkw)
{
    size_t l = n > e ? n - e : 0;
    if (l > win)
        l = win;
    if (l > 32)
        l = 32;
    return kw_in(t, e, e + l, kws, nkw, true);
}

/* Is one of words (lowercase) a whole word within win bytes after t[e] ("555 0134 (work)", not
 * "1641117983 worker=3" nor "... homepage")? Whole words both ends: no letter before or after. */
static bool word_after(const unsigned char *t, size_t n, size_t e, size_t win, const char *const *words, size_t nw)
{
    size_t b = n - e > win ? e + win : n;
    for (size_t x = e; x < b; x++) {
        if (!isletter(t[x]) || (x > 0 && isletter(t[x - 1])))
            continue;
        size_t y = x;
        while (y < n && isletter(t[y]))
            y++;
        for (size_t k = 0; k < nw; k++) {
            size_t l = strlen(words[k]);
            if (y - x != l) /* the word's length first: the compare stays inside it */
                continue;
            size_t z = 0;
            while (z < l && lower(t[x + z]) == (unsigned char)words[k][z])
                z++;
            if (z == l)
                return true;
        }
        x = y;
    }
    return false;
}

/* Whether a keyword labels the number at t[i]: it starts a word in the stretch without digits right
 * before it, at most 24 bytes ("Tracking number: 6389…", not "sku-00042 3782…"), and with max_words,
 * among that many words nearest the number (0: any in the stretch). */
static bool labelled(const unsigned char *t, size_t i, const char *const *kws, size_t nkw, unsigned max_words)
{
    size_t j = i;
    unsigned words = 0;
    while (j > 0 && i - j < 24 && !isd(t[j - 1])) {
        j--;
        if (max_words && isletter(t[j]) && (j == 0 || !isletter(t[j - 1])) && ++words == max_words)
            break;
    }
    return kw_in(t, j, i, kws, nkw, true);
}

/* Each matches where a word starts (kw_before); "tel" only as a word or in "telephone", "telefon",
 * not in "telemetry" or "tell". */
static const char *const phone_kw[] = {"phone", "tel ", "tel.", "tel:", "tel/", "tel,", "tel(", "teleph",
                                       "telef", "mobile", "cell", "call", "fax", "desk", "reach",
                                       "contact", "sms", "whatsapp", "dial", "text", "answer", "messag",
                                       "ring", "office", "landline", "hotline",
                                       /* the same words as Europeans and Brazilians write them:
                                        * teléfono, téléphone/tél., llámame, appelez, chiamami,
                                        * ligue, Handy, anrufen, erreichbar, mobiel, bellen,
                                        * móvil, celular, komórka, kontakt, contatto, joignable */
                                       "tel\xc3\xa9", "t\xc3\xa9l", "llam", "ll\xc3\xa1m", "appel", "chiam",
                                       "ligue", "handy", "anruf", "erreich", "mobiel", "bellen", "m\xc3\xb3vil",
                                       "movil", "celular", "kom\xc3\xb3rk", "kontakt", "contatt", "joign",
                                       "rufnummer"};
/* Phone words written in Japanese (電話 phone, 携帯 mobile): UTF-8, so not in phone_kw's
 * first-letter scan. */
static const char *const phone_kw_ja[] = {"\xe9\x9b\xbb\xe8\xa9\xb1", "\xe6\x90\xba\xe5\xb8\xaf"};
/* The words that make six digits a phone when they label them ("Phone: 049819", "call 33 93 31"). */
static const char *const short_phone_kw[] = {"phone", "tel ", "tel.", "tel:", "teleph", "telef", "mobile",
                                             "cell", "call", "fax", "sms", "whatsapp", "dial", "landline",
                                             "hotline"};
static const char *const number_kw[] = {"number", "no.", "nr.", "numero", "n\xc3\xbamero", "num\xc3\xa9ro", "nummer",
                                        "numer"};
static const char *const not_phone_kw[] = {"order", "card", "account", "tracking", "ref", "invoice", "confirm",
                                           "serial", "model", "ticket", "case", "customer", "policy", "iban",
                                           "routing", "passport", "licen", "ssn", "social", "tax", "zip",
                                           "postal", "member", "employee", "booking", "transaction", "id ",
                                           /* account, order, invoice, customer in DE, FR, ES, NL, IT, PL, PT */
                                           "konto", "compte", "cuenta", "conta", "conto", "rekening", "rachun",
                                           "bestell", "commande", "pedido", "ordine", "zam\xc3\xb3w", "rechnung",
                                           "factur", "fattur", "faktur", "kunde", "client", "klant", "klient",
                                           "steuer", "fiscal", "siret", "siren", "kvk",
                                           /* case, file and consignment numbers */
                                           "vorgang", "aktenzeichen", "dossier", "expediente", "pratica", "zaak",
                                           "sprawa", "awb", "waybill", "sendung", "colis"};
static const char *const phone_kw_after[] = {"office", "fax", "mobile", "cell", "home", "work", "desk"};
static const char *const ssn_kw[] = {"ssn", "social security", "social sec"};
/* A run of 12 to 15 digits (grouped or not) right after one of these is that kind of number even
 * when it passes Luhn with an issuer prefix ("Tracking number: 638975514362", "Ref 6704-5431-5607"),
 * unless a card word is near (before or after). */
static const char *const not_card_kw[] = {"tracking", "order", "invoice", "ref", "serial", "ticket", "case",
                                          "confirm", "booking", "transaction", "shipment", "parcel", "isbn",
                                          "ean", "upc", "gtin", "barcode", "sku", "product", "code", "account",
                                          "routing", "timestamp"};
static const char *const card_kw[] = {"card", "visa", "master", "amex", "american express", "discover",
                                      "maestro", "diners", "jcb", "credit", "debit"};
/* The word right before a dotted quad that makes it a version ("version 1.2.3.4", "Build 7.95.235.38"),
 * an object identifier ("OID 2.5.4.3": X.500 attribute arcs are four parts too) or a document's
 * outline number ("section 4.5.14.18"). */
static const char *const version_words[] = {"v", "ver", "version", "build", "release", "firmware", "fw", "rev",
                                            "revision", "oid",
                                            /* outline numbers: "see section 3.4.6.2", "clause 4.2.1.3" */
                                            "section", "sec", "chapter", "clause", "para", "paragraph", "figure",
                                            "fig", "table", "step", "article", "art", "annex", "appendix"};
static const char *const imei_kw[] = {"imei"};
/* Words that name what a decimal pair in prose measures when they label it, so that it is no
 * latitude, longitude ("scale factor 42.1910, 108.7414", "weights 0.7512, 0.8123"). */
static const char *const not_coord_kw[] = {"factor", "ratio", "scale", "score", "weight", "rate", "range",
                                           "price", "total", "amount", "value", "size", "latency", "offset",
                                           "delta", "mean", "avg", "average", "median", "min", "max", "temp",
                                           "percent", "version", "coefficient", "dimension", "resolution"};
static const char *const dob_kw[] = {"birth", "dob", "born", "d.o.b"};

/* IPv4 at t[i]: a maximal run of digits and dots with exactly four parts (trailing dots are
 * not part of it), no letter right after the address or the run. Read as the dotted quad it
 * must start with (bg_detect_ipv4_valid's grammar: 1 to 3 digits, no leading zero, <= 255),
 * ending at e; the run then goes on with dots only, so e is where the run ends once its
 * trailing dots are dropped, and the quad is 7 to 15 bytes. */
static size_t ipv4_at(const unsigned char *t, size_t n, size_t i)
{
    size_t e = i;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (e >= n || t[e] != '.')
                return 0;
            e++;
        }
        if (e >= n || !isd(t[e]))
            return 0;
        unsigned v = t[e++] - '0';
        if (e < n && isd(t[e])) {
            if (v == 0)
                return 0;
            v = v * 10 + (t[e++] - '0');
            if (e < n && isd(t[e])) {
                v = v * 10 + (t[e++] - '0');
                if (v > 255 || (e < n && isd(t[e])))
                    return 0;
            }
        }
    }
    size_t j = e;
    while (j < n && t[j] == '.')
        j++;
    if (j < n && (isd(t[j]) || isal(t[j]))) /* a digit: the run goes on past a fifth dot */
        return 0;
    if (e < n && isal(t[e]))
        return 0;
    return e;
}

/* IPv6 at t[i]: a maximal run of hex digits, colons and dots (+ %zone). */
static size_t ipv6_at(const unsigned char *t, size_t n, size_t i)
{
    size_t j = i, colons = 0;
    while (j < n && (ishx(t[j]) || t[j] == ':' || t[j] == '.')) {
        colons += t[j] == ':';
        j++;
    }
    if (colons < 2)
        return 0;
    size_t e = j;
    while (e > i && t[e - 1] == '.')
        e--;
    if (e > i + 1 && t[e - 1] == ':' && t[e - 2] != ':')
        e--;
    if (e == j && j < n && t[j] == '%') {
        size_t z = j + 1;
        while (z < n && (isal(t[z]) || t[z] == '_'))
            z++;
        if (z > j + 1)
            e = j = z;
    }
    if (j < n && isal(t[j]) && e == j)
        return 0;
    return bg_detect_ipv6_valid((const char *)t + i, e - i) ? e : 0;
}

/* A compressed IPv6 form ("::") with fewer than three hex groups and no IPv4 tail: "1::", "3::e",
 * "A::". Valid addresses, but in binary data (one byte in 85 is a colon) they turn up by chance
 * every ~200 KiB, so a body read as text for want of a reader does not take them. */
static bool ipv6_short(const unsigned char *t, size_t n)
{
    if (memchr(t, '.', n))
        return false;
    int groups = 0;
    bool dbl = false;
    for (size_t k = 0; k < n; k++) {
        if (t[k] == ':') {
            dbl |= k + 1 < n && t[k + 1] == ':';
            continue;
        }
        if (t[k] == '%')
            break;
        if (!k || t[k - 1] == ':')
            groups++;
    }
    return dbl && groups < 3;
}

static size_t mac_shape(const unsigned char *t, size_t n, size_t i);

/* MAC: hh:hh:hh:hh:hh:hh (or '-'), or Cisco hhhh.hhhh.hhhh; not all-zero or broadcast. */
static size_t mac_at(const unsigned char *t, size_t n, size_t i)
{
    size_t e = mac_shape(t, n, i);
    if (!e)
        return 0;
    bool zero = true, ff = true;
    for (size_t k = i; k < e; k++) {
        if (!ishx(t[k]))
            continue;
        zero &= t[k] == '0';
        ff &= lower(t[k]) == 'f';
    }
    return zero || ff ? 0 : e;
}

static size_t mac_shape(const unsigned char *t, size_t n, size_t i)
{
    if (i + 14 <= n && ishx(t[i]) && ishx(t[i + 1]) && ishx(t[i + 2]) && ishx(t[i + 3]) && t[i + 4] == '.') {
        bool ok = true;
        for (size_t k = 0; k < 14 && ok; k++)
            ok = (k == 4 || k == 9) ? t[i + k] == '.' : ishx(t[i + k]);
        if (ok && (i + 14 == n || (!isal(t[i + 14]) && !(t[i + 14] == '.' && i + 15 < n && ishx(t[i + 15])))))
            return i + 14;
    }
    if (i + 17 > n || !ishx(t[i]) || !ishx(t[i + 1]))
        return 0;
    unsigned char sep = t[i + 2];
    if (sep != ':' && sep != '-')
        return 0;
    for (size_t k = 0; k < 17; k++) {
        if (k % 3 == 2) {
            if (t[i + k] != sep)
                return 0;
        } else if (!ishx(t[i + k])) {
            return 0;
        }
    }
    if (i + 17 < n && (isal(t[i + 17]) || (t[i + 17] == sep && i + 18 < n && ishx(t[i + 18]))))
        return 0;
    return i + 17;
}

/* Digit groups: from t[i], digits separated by single ' ' or '-' (one kind). */
typedef struct {
    size_t end;       /* after the last digit */
    unsigned digits;
    unsigned ngroups;
    unsigned glen[8];
    unsigned char sep;
} groups_t;

static void groups_at(const unsigned char *t, size_t n, size_t i, groups_t *g)
{
    memset(g, 0, sizeof *g);
    size_t j = i;
    for (;;) {
        size_t st = j;
        while (j < n && isd(t[j]))
            j++;
        if (g->ngroups < 8)
            g->glen[g->ngroups] = (unsigned)(j - st);
        g->ngroups++;
        g->digits += (unsigned)(j - st);
        g->end = j;
        if (g->digits > 19 || g->ngroups >= 8)
            return;
        if (j + 1 < n && (t[j] == ' ' || t[j] == '-') && isd(t[j + 1]) && (g->sep == 0 || g->sep == t[j])) {
            g->sep = t[j];
            j++;
            continue;
        }
        return;
    }
}

static size_t card_at(const unsigned char *t, size_t n, size_t i, const groups_t *g)
{
    size_t e;
    if (g->glen[0] >= 12) {
        e = i + g->glen[0];
        if (g->glen[0] > 19)
            return 0;
    } else {
        if (g->digits < 12 || g->digits > 19 || g->ngroups < 2)
            return 0;
        for (unsigned k = 0; k < g->ngroups && k < 8; k++)
            if (g->glen[k] < 2 || g->glen[k] > 6)
                return 0;
        /* Every scheme prints four digits first; three are thousands ("685 207 405 125 items") or
         * a SIRET's SIREN ("616 945 985 14590", Luhn-valid by design). */
        if (g->glen[0] == 3)
            return 0;
        e = g->end;
    }
    if (e < n && (isal(t[e]) || ((t[e] == '.' || t[e] == ',') && e + 1 < n && isd(t[e + 1]))))
        return 0;
    return bg_detect_card_valid((const char *)t + i, e - i) ? e : 0;
}

/* Does t[e] start a one-character suffix that makes the digits before it part of a code ("-S" in
 * "937-76-6755-S")? A word after the hyphen ("555-0134-Office") is a label, not a suffix. */
static bool code_suffix(const unsigned char *t, size_t n, size_t e)
{
    return e + 1 < n && t[e] == '-' && isal(t[e + 1]) && (e + 2 == n || !isal(t[e + 2]));
}

static size_t ssn_at(const unsigned char *t, size_t n, size_t i, bool context)
{
    if (i + 11 <= n && (t[i + 3] == '-' || t[i + 3] == ' ' || t[i + 3] == '.') && t[i + 6] == t[i + 3]) {
        bool ok = true;
        for (size_t k = 0; k < 11 && ok; k++)
            ok = (k == 3 || k == 6) ? true : isd(t[i + k]);
        size_t e = i + 11;
        /* Not inside a longer code: "123-45-6789-01", "Part No. 247-59-7193-Z". */
        if (ok && (e == n || (!isal(t[e]) && !((t[e] == '-' || t[e] == '.') && e + 1 < n && isd(t[e + 1])) &&
                              !code_suffix(t, n, e))))
            return bg_detect_ssn_valid((const char *)t + i, 11) ? e : 0;
    }
    if (context && i + 9 <= n) {
        for (size_t k = 0; k < 9; k++)
            if (!isd(t[i + k]))
                return 0;
        if (i + 9 < n && isal(t[i + 9]))
            return 0;
        return bg_detect_ssn_valid((const char *)t + i, 9) ? i + 9 : 0;
    }
    return 0;
}

/* IMEI: 15 digits with Luhn, as "NN-NNNNNN-NNNNNN-N" (or spaces), or with context plain or as
 * TAC, serial and check digit ("NNNNNNNN NNNNNN N", how handsets and GSMA's TAC lists print it). */
static size_t imei_at(const unsigned char *t, size_t n, size_t i, const groups_t *g, bool context)
{
    bool formatted = g->ngroups == 4 && g->glen[0] == 2 && g->glen[1] == 6 && g->glen[2] == 6 && g->glen[3] == 1;
    bool plain = context && ((g->ngroups == 1 && g->glen[0] == 15) ||
                             (g->ngroups == 3 && g->glen[0] == 8 && g->glen[1] == 6 && g->glen[2] == 1));
    if (!formatted && !plain)
        return 0;
    if (g->end < n && isal(t[g->end]))
        return 0;
    return bg_detect_luhn((const char *)t + i, g->end - i) ? g->end : 0;
}

/* Phone: '+'? digits with single separators ( -./) and parentheses; an optional extension. */
typedef struct {
    size_t end;
    unsigned digits;
    bool plus, nanp, date;
    bool decimal; /* two runs and one '.' between: "10.63487" */
    bool national; /* a national number's own shape: a trunk '0' and its grouping, "(11) 94478-1505" */
    bool intl;     /* "00" and a country code, grouped: "0049 40 3030073" */
    bool thousands; /* one or two digits, then groups of three: "10 000 000" (or "75 196 772",
                       which only a phone word tells from a count) */
} phone_t;

/* The groupings national numbers are written in, with the trunk '0' that only a national number
 * starts with (10 or 11 digits): "01 23 45 67 89" (France, five pairs), "0171 5316715",
 * "07528 765175", "089/7902968" (two groups), "020 7946 0958", "(0161) 496 0123", "03-6093-0097",
 * "090-1234-5678", "02 4562 7823" (three, the last of four); Brazil's "(11) 94478-1505",
 * "(21) 2345-6789" and "11 94697-5885" (a mobile's 9); and "00" with a country code, grouped ("0049 40 3030073"). Dates, decimals and
 * thousands ("1 234 567") have other shapes; a '.' separates only the five pairs. */
static void phone_shape(const unsigned char *t, size_t i, phone_t *p, const unsigned *glen,
                        const unsigned char *sepkind, unsigned ngr, unsigned paren)
{
    if (p->digits < 10) /* also keeps t[f + 2] inside the number */
        return;
    size_t f = t[i] == '(' ? i + 1 : i;
    bool dots = false, same = true;
    for (unsigned k = 0; k + 1 < ngr; k++) {
        dots |= sepkind[k] == '.';
        same &= sepkind[k] == sepkind[0];
    }
    if (t[f] == '0' && t[f + 1] == '0') {
        /* Country codes of one digit are 1 and 7; the others have two or three. */
        p->intl = !paren && !dots && ngr >= 3 && glen[0] <= 5 && /* not "AWB 007-02149977" */
                  (glen[0] >= 4 || (glen[0] == 3 && (t[f + 2] == '1' || t[f + 2] == '7')));
        return;
    }
    if (t[f] != '0' || t[f + 1] == '0') {
        p->national = (paren && t[i] == '(' && glen[0] == 2 && ngr == 3 && (glen[1] == 4 || glen[1] == 5) &&
                       glen[2] == 4 && sepkind[1] == '-') ||
                      /* a Brazilian mobile without the parentheses: "11 94697-5885" */
                      (!paren && ngr == 3 && glen[0] == 2 && glen[1] == 5 && glen[2] == 4 && sepkind[0] == ' ' &&
                       sepkind[1] == '-' && t[i + 3] == '9');
        return;
    }
    if (p->digits > 11)
        return;
    if (ngr == 5)
        p->national = same && glen[0] == 2 && glen[1] == 2 && glen[2] == 2 && glen[3] == 2 && glen[4] == 2;
    else if (ngr == 2)
        p->national = !dots && glen[0] >= 2 && glen[0] <= 6 && glen[1] >= 5 && glen[1] <= 8;
    else if (ngr == 3)
        p->national = !dots && glen[0] >= 2 && glen[0] <= 5 && (glen[1] == 3 || glen[1] == 4) && glen[2] == 4;
}

static bool phone_parse(const unsigned char *t, size_t n, size_t i, phone_t *p)
{
    memset(p, 0, sizeof *p);
    size_t j = i;
    if (t[j] == '+') {
        /* A '+' then a space is a list's bullet or a sum ("+ 9.0.241/242"), not a country code. */
        if (j + 1 >= n || !(isd(t[j + 1]) || t[j + 1] == '('))
            return false;
        p->plus = true;
        j++;
    }
    unsigned glen[8] = {0}, ng = 0, seps = 0, paren = 0, popen = 0;
    unsigned char sepkind[8] = {0};
    size_t last = 0, pclose = 0;
    unsigned cur = 0;
    while (j < n) {
        unsigned c = t[j];
        if (isd(c)) {
            /* A run of digits at once: a phone is mostly digits. */
            size_t k = bgj_skip_digits(t, j + 1, n);
            p->digits += (unsigned)(k - j);
            cur += (unsigned)(k - j);
            j = last = k;
            seps = 0;
            /* A NANP number is complete after ddd-ddd-dddd, ddd.ddd.dddd or (ddd) ddd-dddd: a
             * different separator after it starts something else ("415-555-2671 10.0.0.1"). */
            if (!p->plus && ng == 2 && cur == 4 && glen[0] == 3 && glen[1] == 3 && j < n &&
                (paren ? sepkind[1] == '-' : sepkind[0] == sepkind[1] && (sepkind[0] == '-' || sepkind[0] == '.')) &&
                t[j] != sepkind[1])
                break;
            continue;
        }
        if (cur) {
            if (ng < 8)
                glen[ng] = cur;
            ng++;
            cur = 0;
        }
        if (c == '(') {
            if (popen || (j > i && isd(t[j - 1])))
                break;
            popen = 1;
            paren = 1;
            j++;
            continue;
        }
        if (c == ')') {
            if (!popen)
                break;
            popen = 0;
            pclose = j;
            j++;
            continue;
        }
        if (c == ' ' || c == '-' || c == '.' || c == '/') {
            if (seps >= 1 || j + 1 >= n)
                break;
            seps++;
            if (ng && ng <= 8)
                sepkind[ng - 1] = (unsigned char)c;
            j++;
            continue;
        }
        break;
    }
    if (cur) {
        if (ng < 8)
            glen[ng] = cur;
        ng++;
    }
    if (!last)
        return false;
    /* A '(' that no ')' closes before the last digit wraps the whole number ("(020 7547 4465)"):
     * the number starts at its first digit. */
    if (t[i] == '(' && (popen || pclose >= last))
        return false;
    size_t e = last;
    /* Extension: "x123", " x123", " ext. 123", " ext 123". */
    size_t k = e;
    if (k < n && t[k] == ' ')
        k++;
    if (k < n && (t[k] == 'x' || t[k] == 'X')) {
        k++;
    } else if (k + 3 <= n && lower(t[k]) == 'e' && lower(t[k + 1]) == 'x' && lower(t[k + 2]) == 't') {
        k += 3;
        if (k < n && t[k] == '.')
            k++;
        if (k < n && t[k] == ' ')
            k++;
    } else {
        k = 0;
    }
    if (k && k < n && isd(t[k])) {
        size_t x = k;
        while (x < n && isd(t[x]) && x - k < 6)
            x++;
        if (x == n || !isal(t[x]))
            e = x;
    }
    if (e < n && (isal(t[e]) || t[e] == '@'))
        return false;
    /* Not a number going on as a decimal or a time ("2023-04-09 11:55"), nor the digits of a
     * longer code that a check letter ends ("Part No. 937-76-6755-S"; "-Office" is a label). */
    if (e + 1 < n && (((t[e] == '.' || t[e] == ',' || t[e] == ':') && isd(t[e + 1])) || code_suffix(t, n, e)))
        return false;
    p->end = e;
    unsigned ngr = ng < 8 ? ng : 8;
    p->decimal = ngr == 2 && sepkind[0] == '.' && !paren && !p->plus;
    if (!p->plus && ngr == ng)
        phone_shape(t, i, p, glen, sepkind, ngr, paren);
    if (!p->plus && !paren && ngr >= 3 && ngr == ng && glen[0] <= 2) {
        p->thousands = true;
        for (unsigned k = 1; k < ngr; k++)
            p->thousands &= glen[k] == 3 && (k == 1 || sepkind[k - 1] == sepkind[0]);
    }
    /* (ddd) ddd-dddd, ddd-ddd-dddd, ddd.ddd.dddd, 1-ddd-ddd-dddd */
    if (!p->plus) {
        if (ngr == 3 && glen[0] == 3 && glen[1] == 3 && glen[2] == 4 &&
            (paren || (sepkind[0] == sepkind[1] && (sepkind[0] == '-' || sepkind[0] == '.'))))
            p->nanp = true;
        if (ngr == 4 && glen[0] == 1 && glen[1] == 3 && glen[2] == 3 && glen[3] == 4 && sepkind[0] == '-')
            p->nanp = true;
        /* "425 882 9090": spaces only with a valid NANP area code and exchange (first digit 2-9). */
        if (ngr == 3 && glen[0] == 3 && glen[1] == 3 && glen[2] == 4 && !paren && sepkind[0] == ' ' &&
            sepkind[1] == ' ' && t[i] >= '2' && t[i + 4] >= '2')
            p->nanp = true;
        /* Dates: yyyy-mm-dd, dd/mm/yyyy, dd.mm.yyyy */
        if (ngr == 3 && ((glen[0] == 4 && glen[1] <= 2 && glen[2] <= 2) || (glen[0] <= 2 && glen[1] <= 2 && glen[2] == 4)) &&
            !paren)
            p->date = true;
    }
    return true;
}

/* Whether phone_at(t, n, i, false) can find a phone starting at digit t[i]: a phone has 7 to 15 digits,
 * and phone_parse goes past the first run of digits only over one separator (' ', '-', '.',
 * '/') followed by a digit or '('. A short number in text ("700 Main Street", "3 items") fails
 * here without phone_parse's set-up (~170 Ir). */
static inline bool phone_may(const unsigned char *t, size_t n, size_t i)
{
    size_t r = bgj_skip_digits(t, i + 1, n);
    if (r - i >= 7 && r - i <= 15)
        return true;
    return r + 1 < n && (t[r] == ' ' || t[r] == '-' || t[r] == '.' || t[r] == '/') && (isd(t[r + 1]) || t[r + 1] == '(');
}

/* A phone in free text (or under a phone key when keyed). */
/* Six digits, in groups split by spaces or hyphens, are a (local) phone number only where a phone word
 * labels them: one of the three words right before them, with no digit between. */
static size_t short_phone(const unsigned char *t, size_t n, size_t i, size_t e)
{
    /* Not the tail of a token ("AKIA-123456", "ref_123456", "#123456"). */
    if (i > 0 && (isal(t[i - 1]) || strchr("-_./#+@$%&*", t[i - 1])))
        return 0;
    size_t d = 0;
    for (size_t k = i; k < e; k++) {
        if (isd(t[k]))
            d++;
        else if (t[k] != ' ' && t[k] != '-')
            return 0;
    }
    if (d != 6 || (e < n && (isal(t[e]) || ((t[e] == '.' || t[e] == ',' || t[e] == ':') && e + 1 < n && isd(t[e + 1])))))
        return 0;
    /* Not behind a two- or three-letter capital code ("phone QQ 12 34 56 C": a NINO's letters). */
    size_t w = i;
    while (w > 0 && t[w - 1] == ' ')
        w--;
    size_t we = w;
    while (w > 0 && (cls[t[w - 1]] & CU))
        w--;
    if (we - w >= 2 && we - w <= 3 && (w == 0 || !isletter(t[w - 1]))) {
        static const char *const ok[] = {"tel", "sms", "fax"};
        if (!kw_in(t, w, we, ok, 3, true))
            return 0;
    }
    /* The word, one of the last three before the digits ("My phone number is 950 932", not "Call of
     * Duty sold 123 456"). */
    return labelled(t, i, short_phone_kw, sizeof short_phone_kw / sizeof short_phone_kw[0], 3) ? e : 0;
}

static size_t phone_at(const unsigned char *t, size_t n, size_t i, bool keyed)
{
    phone_t p;
    if (!keyed && isd(t[i]) && !phone_may(t, n, i)) {
        size_t r = bgj_skip_digits(t, i + 1, n);
        return r - i == 6 ? short_phone(t, n, i, r) : 0;
    }
    if (!phone_parse(t, n, i, &p))
        return 0;
    if (p.digits < 7 || p.digits > 15)
        return !keyed && p.digits == 6 && !p.plus ? short_phone(t, n, i, p.end) : 0;
    if (keyed)
        return p.end;
    if (p.date)
        return 0;
    /* The tail of an identifier: "CVE-2015-2326", "bug_20160907", "(LP: #1919404)",
     * ".../mailman/message/32939144/". */
    if (!p.plus && i > 0 &&
        (t[i - 1] == '#' || t[i - 1] == '_' || ((t[i - 1] == '-' || t[i - 1] == '/') && i >= 2 && isal(t[i - 2]))))
        return 0;
    if (p.plus)
        return p.digits >= 8 && t[i + 1] != '0' ? p.end : 0;
    if (p.nanp)
        return p.end;
    /* A national or "00" international number by its shape, unless it is the tail of a longer
     * group of digits ("ref 7086 0035 1098 6934") or a word says it is another kind of number
     * ("account 0123 456789"). */
    if ((p.national || p.intl) && !(i >= 2 && isd(t[i - 2]) && (t[i - 1] == ' ' || t[i - 1] == '-')) &&
        !labelled(t, i, not_phone_kw, sizeof not_phone_kw / sizeof not_phone_kw[0], 2))
        return p.end;
    /* A single '.' between two runs is a decimal ("x=10.63487"), not a phone. */
    if (p.decimal)
        return 0;
    /* The phone word labels the first number after it: five digits between it and these ("called
     * from 089/8332141 about batch 202276528298") belong to the number it labels. */
    size_t from = i, nd = 0;
    while (from > 0 && i - from < 40) {
        if (isd(t[from - 1]) && ++nd == 5)
            break;
        from--;
    }
    if (kw_in(t, from, i, phone_kw, sizeof phone_kw / sizeof phone_kw[0], true) ||
        word_after(t, n, p.end, 12, phone_kw_after, sizeof phone_kw_after / sizeof phone_kw_after[0]))
        return p.end;
    /* 電話, 携帯: only where their lead bytes (0xe9, 0xe6) are in the stretch. */
    if ((memchr(t + from, 0xe9, i - from) || memchr(t + from, 0xe6, i - from)) &&
        kw_in(t, from, i, phone_kw_ja, sizeof phone_kw_ja / sizeof phone_kw_ja[0], false))
        return p.end;
    /* "my number is ...": a number word that labels these digits (among the three words right
     * before them, no digits between: not the "No." of "Part No. 624-05-3445-P, ISBN 978-2-...")
     * and no word saying which kind of number it is. */
    if (!p.thousands && labelled(t, i, number_kw, sizeof number_kw / sizeof number_kw[0], 3) &&
        !kw_before(t, i, 40, not_phone_kw, sizeof not_phone_kw / sizeof not_phone_kw[0]))
        return p.end;
    return 0;
}

/* IBAN at an uppercase letter: CCdd then alphanumerics in optional groups of four. */
/* Is t[i] inside a UUID (8-4-4-4-12 hex digits, the token of hex digits and hyphens around it)?
 * Its groups are 16 characters from a 'b' that starts one: "be70f719-6366-4bd7", "be71-6dd961ca2d09"
 * are a Belgian IBAN's length, and one in 97 passes mod 97. */
static bool in_uuid(const unsigned char *t, size_t n, size_t i)
{
    size_t a = i, b = i;
    while (a > 0 && (ishx(t[a - 1]) || t[a - 1] == '-'))
        a--;
    while (b < n && (ishx(t[b]) || t[b] == '-'))
        b++;
    while (a < b && t[a] == '-')
        a++;
    while (b > a && t[b - 1] == '-')
        b--;
    if (b - a != 36)
        return false;
    for (size_t k = 0; k < 36; k++)
        if ((t[a + k] == '-') != (k == 8 || k == 13 || k == 18 || k == 23))
            return false;
    return true;
}

static size_t iban_at(const unsigned char *t, size_t n, size_t i)
{
    if (i + 15 > n || !(cls[t[i]] & (CU | CL)) || !(cls[t[i + 1]] & (CU | CL)) || !isd(t[i + 2]) || !isd(t[i + 3]))
        return 0;
    /* One case throughout: "gb82west..." or "GB82WEST...", not prose. */
    bool up = (cls[t[i]] & CU) != 0;
    if (((cls[t[i + 1]] & CU) != 0) != up)
        return 0;
    char cc[3] = {(char)(t[i] & ~0x20), (char)(t[i + 1] & ~0x20), 0};
    int want = bg_detect_iban_length(cc);
    if (!want)
        return 0;
    size_t j = i, got = 0;
    unsigned char sep = 0;
    char buf[40];
    unsigned want_case = up ? CU : CL;
    while (j < n && got < (size_t)want && got < sizeof buf) {
        unsigned c = t[j];
        if (isd(c) || (cls[c] & want_case)) {
            buf[got++] = (char)(isd(c) ? c : (c & ~0x20u));
            j++;
            continue;
        }
        if ((c == ' ' || c == '-') && (sep == 0 || sep == c) && got % 4 == 0 && j + 1 < n &&
            (isd(t[j + 1]) || (cls[t[j + 1]] & want_case))) {
            sep = (unsigned char)c;
            j++;
            continue;
        }
        break;
    }
    if (got != (size_t)want || (j < n && isal(t[j])))
        return 0;
    return bg_detect_iban_valid(buf, got) && !(sep == '-' && in_uuid(t, n, i)) ? j : 0;
}

/* UK NINO: two letters (with the HMRC exclusions), six digits (pairs may be spaced), A–D. */
static size_t nino_at(const unsigned char *t, size_t n, size_t i)
{
    if (i + 9 > n)
        return 0;
    unsigned a = lower(t[i]), b = lower(t[i + 1]);
    if (a - 'a' >= 26u || b - 'a' >= 26u)
        return 0;
    if (!isd(t[i + 2]) && !(t[i + 2] == ' ' && isd(t[i + 3])))
        return 0;
    /* First letter not D F I Q U V; second not D F I O Q U V. */
    static const uint32_t bad1 = 1u << 3 | 1u << 5 | 1u << 8 | 1u << 16 | 1u << 20 | 1u << 21;
    static const uint32_t bad2 = bad1 | 1u << 14;
    if ((bad1 >> (a - 'a') & 1) || (bad2 >> (b - 'a') & 1))
        return 0;
    /* Prefixes never issued: BG GB NK KN TN NT ZZ. */
    switch (a << 8 | b) {
    case 'b' << 8 | 'g': case 'g' << 8 | 'b': case 'n' << 8 | 'k': case 'k' << 8 | 'n':
    case 't' << 8 | 'n': case 'n' << 8 | 't': case 'z' << 8 | 'z':
        return 0;
    default:
        break;
    }
    size_t j = i + 2, d = 0;
    bool spaced = false;
    while (j < n && d < 6) {
        if (isd(t[j])) {
            d++;
            j++;
        } else if (t[j] == ' ' && d % 2 == 0 && j + 1 < n && isd(t[j + 1])) {
            spaced = true;
            j++;
        } else {
            break;
        }
    }
    if (d != 6)
        return 0;
    if (j < n && t[j] == ' ' && (spaced || true))
        j++;
    if (j >= n)
        return 0;
    unsigned s = lower(t[j]);
    if (s < 'a' || s > 'd')
        return 0;
    j++;
    if (j < n && isal(t[j]))
        return 0;
    /* The letters agree in case (a sentence's "Is 12 34 56 a" is not a NINO). */
    bool up = (cls[t[i]] & CU) != 0;
    if (((cls[t[i + 1]] & CU) != 0) != up || ((cls[t[j - 1]] & CU) != 0) != up)
        return 0;
    return j;
}

/* JWT: three base64url segments, the first two JSON ("eyJ"). */
static size_t jwt_at(const unsigned char *t, size_t n, size_t i)
{
    if (i + 3 > n || memcmp(t + i, "eyJ", 3) != 0)
        return 0;
    size_t j = i, seg = 0, len = 0;
    while (j < n) {
        if (is_b64url(t[j])) {
            len++;
            j++;
            continue;
        }
        if (t[j] == '.' && seg < 2 && len >= 10) {
            seg++;
            len = 0;
            j++;
            continue;
        }
        break;
    }
    if (seg != 2 || (len == 0 && (j < n && t[j] == '.')))
        return 0;
    return j;
}

/* Known API key shapes: a vendor prefix then enough key characters. */
static size_t apikey_at(const unsigned char *t, size_t n, size_t i)
{
    /* Only letters that start a known prefix get here at all. */
    if (i + 1 >= n || !key_start(t[i], t[i + 1]))
        return 0;
#define PRE(s, m) {s, sizeof s - 1, m}
    static const struct {
        const char *p;
        unsigned len, min;
    } pre[] = {PRE("sk_live_", 16), PRE("sk_test_", 16), PRE("rk_live_", 16), PRE("rk_test_", 16),
               PRE("whsec_", 16),   PRE("AKIA", 16),     PRE("ASIA", 16),     PRE("ghp_", 30),
               PRE("gho_", 30),     PRE("ghu_", 30),     PRE("ghs_", 30),     PRE("ghr_", 30),
               PRE("github_pat_", 30), PRE("xoxb-", 20), PRE("xoxp-", 20),    PRE("xoxa-", 20),
               PRE("AIza", 30),     PRE("glpat-", 20),   PRE("sk-proj-", 20), PRE("sk-ant-", 20),
               PRE("sk-", 32),      PRE("SG.", 40),      PRE("hf_", 30),      PRE("npm_", 30)};
#undef PRE
    /* The prefixes in table order from the first one with t[i]'s letter: first[] holds that
     * index, so a word is compared with its own letter's prefixes only (the first that matches
     * still decides, as in one pass over the whole table). */
    static const uint8_t first[128] = {['s'] = 0, ['r'] = 2, ['w'] = 4, ['A'] = 5, ['g'] = 7,
                                       ['x'] = 13, ['S'] = 21, ['h'] = 22, ['n'] = 23};
    for (size_t k = first[t[i] & 0x7f]; k < sizeof pre / sizeof pre[0]; k++) {
        if (t[i] != (unsigned char)pre[k].p[0] || i + 1 >= n || t[i + 1] != (unsigned char)pre[k].p[1])
            continue;
        size_t pl = pre[k].len;
        if (i + pl > n || memcmp(t + i, pre[k].p, pl) != 0)
            continue;
        size_t j = i + pl;
        while (j < n && (is_b64url(t[j]) || t[j] == '.'))
            j++;
        while (j > i + pl && t[j - 1] == '.')
            j--;
        if (j - i - pl < pre[k].min)
            return 0;
        /* An AWS access key id is exactly 16 base32 characters (A-Z, 2-7) after AKIA/ASIA; one in
         * 28 has no digit, and 20 capitals in a row starting so are no prose. */
        if (t[i] == 'A' && (t[i + 1] == 'K' || t[i + 1] == 'S') && j - i == 20) {
            bool b32 = true;
            for (size_t x = i + pl; x < j && b32; x++)
                b32 = (cls[t[x]] & CU) || (t[x] >= '2' && t[x] <= '7');
            if (b32)
                return j;
        }
        /* Keys mix character kinds; a long run of one letter is prose or padding. */
        unsigned kinds = 0;
        for (size_t x = i + pl; x < j; x++)
            kinds |= isd(t[x]) ? 1 : (cls[t[x]] & CU) ? 2 : (cls[t[x]] & CL) ? 4 : 8;
        if (__builtin_popcount(kinds) < 2)
            return 0;
        return j;
    }
    return 0;
}

/* E-mail around t[at] == '@': local part back, domain forward; then the span t[a, b) is what
 * bg_detect_email_valid accepts. The local part is checked here: its bytes are local-part bytes
 * by construction (letters, digits, . _ % + -), its first is no '.', so only a last '.', two in a
 * row or more than 64 bytes can fail it (the rightmost ".." is noted on the way back); the
 * domain is bg_detect_email_domain_valid's. */
enum { EA_LOCAL = 1, EA_DOMAIN = 2 }; /* letters, digits and . _ % + - / letters, digits and . - */
static const uint8_t ecls[256] = {
    ['0' ... '9'] = EA_LOCAL | EA_DOMAIN, ['A' ... 'Z'] = EA_LOCAL | EA_DOMAIN, ['a' ... 'z'] = EA_LOCAL | EA_DOMAIN,
    ['.'] = EA_LOCAL | EA_DOMAIN, ['-'] = EA_LOCAL | EA_DOMAIN, ['_'] = EA_LOCAL, ['%'] = EA_LOCAL, ['+'] = EA_LOCAL,
};

/* A quoted local part ending right before the '@' at t[at] ("\"john smith\"@example.org", RFC 5322):
 * 1 to 62 printable or UTF-8 bytes without '"' or '\\' between the quotes, the opening one not glued to a
 * word. Returns where the opening quote is, or at (none). */
static size_t quoted_local(const unsigned char *t, size_t at)
{
    size_t q = at - 1, j = q;
    while (j > 0 && q - j < 63) {
        unsigned c = t[--j];
        if (c == '"') {
            if (j + 1 == q || (j > 0 && isal(t[j - 1])))
                return at;
            return j;
        }
        if (c < 0x20 || c == 0x7f || c == '\\') /* UTF-8 is allowed (RFC 6532) */
            return at;
    }
    return at;
}

static bool email_around(const unsigned char *t, size_t n, size_t at, size_t *a, size_t *b)
{
    size_t s = at, dots = SIZE_MAX; /* dots: where the rightmost ".." starts */
    while (s > 0 && (ecls[t[s - 1]] & EA_LOCAL)) {
        s--;
        if (t[s] == '.' && s + 1 < at && t[s + 1] == '.' && dots == SIZE_MAX)
            dots = s;
    }
    while (s < at && (t[s] == '.' || t[s] == '+' || t[s] == '-'))
        s++;
    if (s == at && at >= 3 && t[at - 1] == '"')
        s = quoted_local(t, at);
    size_t e = at + 1;
    while (e < n && (ecls[t[e]] & EA_DOMAIN))
        e++;
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-'))
        e--;
    if (s == at || e <= at + 1)
        return false;
    if (at - s > 64 || t[at - 1] == '.' || (dots != SIZE_MAX && dots >= s) ||
        !bg_detect_email_domain_valid((const char *)t + at + 1, e - at - 1))
        return false;
    *a = s;
    *b = e;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* The text scanner: every value, free text and header goes through here                       */

enum {
    F_NOCARD = 1,    /* ids and timestamps: no cards */
    F_NOPHONE = 2,
    F_NOIP = 4,      /* version strings */
    F_CLIENTIP = 8,  /* client-IP headers: only addresses, reported as client_ip */
    F_SSNCTX = 16,   /* bare 9 digits are an SSN here */
    F_IMEICTX = 32,
};

static size_t custom_text_at(const scan_t *s, const unsigned char *t, size_t n, size_t i, unsigned *det)
{
    const bg_classifier_t *c = s->c;
    for (size_t k = 0; k < c->ncustom; k++) {
        const custom_t *u = &c->custom[k];
        if (u->has_keys || !u->prefix || i + u->prefix_len > n || memcmp(t + i, u->prefix, u->prefix_len) != 0)
            continue;
        size_t j = i + u->prefix_len;
        if (u->digits >= 0) {
            size_t st = j;
            while (j < n && isd(t[j]))
                j++;
            if (j - st != (size_t)u->digits || (j < n && isal(t[j])))
                continue;
        } else {
            size_t st = j;
            while (j < n && (isal(t[j]) || t[j] == '-' || t[j] == '_'))
                j++;
            if (j == st)
                continue;
        }
        *det = BG_DET__BUILTIN + (unsigned)k;
        return j;
    }
    return 0;
}

/* Whether the word before t[i], over one or two of ' ', ':', '=', '#' ("version: 1.2.3.4", "build #7"),
 * is one of words (lowercase), compared case-insensitively. */
static bool word_before_is(const unsigned char *t, size_t i, const char *const *words, size_t nw)
{
    size_t j = i, skipped = 0;
    while (j > 0 && skipped < 2 && (t[j - 1] == ' ' || t[j - 1] == ':' || t[j - 1] == '=' || t[j - 1] == '#'))
        j--, skipped++;
    size_t e = j;
    while (j > 0 && e - j <= 12 && isal(t[j - 1]))
        j--;
    size_t l = e - j;
    if (!skipped || !l || l > 12 || (j > 0 && isal(t[j - 1])))
        return false;
    for (size_t k = 0; k < nw; k++) {
        if (strlen(words[k]) != l)
            continue;
        size_t y = 0;
        while (y < l && lower(t[j + y]) == (unsigned char)words[k][y])
            y++;
        if (y == l)
            return true;
    }
    return false;
}

/* A month's English name at t[i]: whole, or its first three letters (or "Sept"), then an optional
 * '.'; returns the end, or 0. */
static size_t month_at(const unsigned char *t, size_t n, size_t i)
{
    static const char *const mon[] = {"january", "february", "march",     "april",   "may",      "june",
                                      "july",    "august",   "september", "october", "november", "december"};
    size_t j = i;
    while (j < n && isletter(t[j]) && j - i < 10)
        j++;
    size_t l = j - i;
    if (l < 3 || (j < n && isletter(t[j])))
        return 0;
    for (size_t k = 0; k < 12; k++) {
        size_t ml = strlen(mon[k]);
        if (l > ml || (l != 3 && l != ml && !(k == 8 && l == 4)))
            continue;
        size_t x = 0;
        while (x < l && lower(t[i + x]) == (unsigned char)mon[k][x])
            x++;
        if (x == l)
            return j < n && t[j] == '.' ? j + 1 : j;
    }
    return 0;
}

/* " 1985" or ", 1985" at t[i] (a year 1900-2099, not followed by a digit or letter); the end or 0. */
static size_t year_after(const unsigned char *t, size_t n, size_t i)
{
    if (i < n && t[i] == ',')
        i++;
    if (i + 5 > n || t[i] != ' ' || !((t[i + 1] == '1' && t[i + 2] == '9') || (t[i + 1] == '2' && t[i + 2] == '0')) ||
        !isd(t[i + 3]) || !isd(t[i + 4]) || (i + 5 < n && isal(t[i + 5])))
        return 0;
    return i + 5;
}

/* A date written with its month's name from the day at t[i] (one or two digits, glen): "15 March
 * 1985", "15th Mar. 1985", or "March 15, 1985", where *start moves back to the month. 0 if none. */
static size_t date_words(const unsigned char *t, size_t n, size_t i, unsigned glen, size_t *start)
{
    size_t j = i + glen;
    unsigned d = (unsigned)(t[i] - '0');
    if (glen == 2)
        d = d * 10 + (unsigned)(t[i + 1] - '0');
    if (d == 0 || d > 31)
        return 0;
    if (j + 2 < n && isletter(t[j]) && isletter(t[j + 1]) && !isletter(t[j + 2])) {
        unsigned a = lower(t[j]), b = lower(t[j + 1]);
        if ((a == 's' && b == 't') || (a == 'n' && b == 'd') || (a == 'r' && b == 'd') || (a == 't' && b == 'h'))
            j += 2;
    }
    size_t m, e;
    /* Cheap rejections first: a month's initial (j f m a s o n d), then the year after the word,
     * and only then the month's letters (most "12 items" stop at the first test). */
    static const uint32_t initials = 1u << ('j' - 'a') | 1u << ('f' - 'a') | 1u << ('m' - 'a') | 1u << ('a' - 'a') |
                                     1u << ('s' - 'a') | 1u << ('o' - 'a') | 1u << ('n' - 'a') | 1u << ('d' - 'a');
    if (j + 1 < n && t[j] == ' ' && lower(t[j + 1]) - 'a' < 26u && (initials >> (lower(t[j + 1]) - 'a') & 1)) {
        for (m = j + 1; m < n && isletter(t[m]) && m - j <= 10;)
            m++;
        if (m < n && t[m] == '.')
            m++;
        if ((e = year_after(t, n, m)) && month_at(t, n, j + 1) == m) {
            *start = i;
            return e;
        }
    }
    if (i >= 4 && t[i - 1] == ' ' && (e = year_after(t, n, j))) {
        size_t a = i - 1;
        if (t[a - 1] == '.')
            a--;
        while (a > 0 && isletter(t[a - 1]) && i - a < 12)
            a--;
        if ((a == 0 || !isletter(t[a - 1])) && month_at(t, n, a) == i - 1) {
            *start = a;
            return e;
        }
    }
    return 0;
}

/* A decimal at t[*i] (optional '-', then 1 to 3 digits whose value is below lim, '.', at least
 * mindec digits); *i moves past it. */
static bool coord_dec(const unsigned char *t, size_t n, size_t *i, unsigned lim, unsigned mindec)
{
    size_t j = *i;
    if (j < n && t[j] == '-')
        j++;
    unsigned v = 0, k = 0;
    for (; j < n && isd(t[j]) && k < 4; j++, k++)
        v = v * 10 + (t[j] - '0');
    if (k == 0 || k > 3 || v >= lim || (k > 1 && t[j - k] == '0') || j >= n || t[j] != '.')
        return false;
    size_t d = ++j;
    while (j < n && isd(t[j]))
        j++;
    if (j - d < mindec)
        return false;
    *i = j;
    return true;
}

/* A latitude, longitude pair written in text at t[i] ("48.85661, 2.35222", "-33.8688,151.2093"):
 * each with at least mindec decimals (a position to ~10 m, where prices and ratios have two), the
 * latitude within +-90 and the longitude within +-180, one comma between them, and not one pair
 * of a longer list of numbers. Returns the end, or 0. */
static size_t coord_text_at(const unsigned char *t, size_t n, size_t i, unsigned mindec)
{
    size_t j = i;
    if (!coord_dec(t, n, &j, 90, mindec))
        return 0;
    while (j < n && t[j] == ' ')
        j++;
    if (j >= n || t[j] != ',')
        return 0;
    j++;
    while (j < n && t[j] == ' ')
        j++;
    if (!coord_dec(t, n, &j, 180, mindec))
        return 0;
    size_t e = j;
    if (e < n && (isal(t[e]) || (t[e] == '.' && e + 1 < n && isd(t[e + 1]))))
        return 0;
    while (j < n && t[j] == ' ')
        j++;
    if (j < n && t[j] == ',') { /* a list goes on with a number; ", ok?" does not */
        j++;
        while (j < n && t[j] == ' ')
            j++;
        if (j < n && (isd(t[j]) || (t[j] == '-' && j + 1 < n && isd(t[j + 1]))))
            return 0;
    }
    return e;
}

/* Is t[i] right after a section sign, "§" or "§ " (UTF-8 c2 a7): "RFC 2142 §1.1.5.1"? */
static bool section_sign_before(const unsigned char *t, size_t i)
{
    if (i > 0 && t[i - 1] == ' ')
        i--;
    return i >= 2 && t[i - 1] == 0xa7 && t[i - 2] == 0xc2;
}

/* Does t[i] continue a grouped number, a group of 2 to 6 digits and a space before it ("9400 1192
 * 3601 1890 1837 21", a parcel's 22 digits)? A card that starts there must be printed as cards
 * are (card_grouped): else it is the tail of the longer number, not a card. (A run of 7 or more
 * digits before the space is a number of its own: "4111111111111111 5555555555554444" lists two
 * cards; "... 4012-8888-8888-1881 4012 8888 8888 1881" lists one card twice.) */
static bool inside_grouped(const unsigned char *t, size_t i)
{
    if (i < 3 || t[i - 1] != ' ' || !isd(t[i - 2]))
        return false;
    size_t k = i - 2, d = 0;
    while (d < 7 && isd(t[k])) {
        d++;
        if (k == 0)
            return d >= 2;
        k--;
    }
    return d >= 2 && d <= 6 && !isal(t[k]);
}

/* Are g's groups a card's print layout: 4-4-4-4, 4-4-4-4-3, 4-6-5 (Amex), 4-6-4 (Diners), or one run? */
static bool card_grouped(const groups_t *g)
{
    const unsigned *q = g->glen;
    if (g->ngroups == 1)
        return true;
    if (g->ngroups == 3)
        return q[0] == 4 && q[1] == 6 && (q[2] == 5 || q[2] == 4);
    if (g->ngroups == 4 || g->ngroups == 5)
        return q[0] == 4 && q[1] == 4 && q[2] == 4 && q[3] == 4 && (g->ngroups == 4 || q[4] == 3);
    return false;
}

static size_t digit_start(const unsigned char *t, size_t n, size_t i, unsigned fl, unsigned *det, size_t *start)
{
    size_t e;
    unsigned prev = i ? t[i - 1] : ' ';
    /* Versions: "Chrome/120.0.1.2", "v=3.14.22.190", "version 1.2.3.4" (the word is read only before
     * what ipv4_at takes: a cost on dotted quads alone). */
    bool version = (prev == '/' && (i < 2 || t[i - 2] != '/')) || /* "//" opens a URL's host: an address */
                   (prev == '=' && i >= 2 && lower(t[i - 2]) == 'v' && (i < 3 || !isal(t[i - 3]))) ||
                   /* version specifiers: "pkg==1.2.3.4", ">=", "<=", "~=", "!=" */
                   (prev == '=' && i >= 2 && (t[i - 2] == '=' || t[i - 2] == '>' || t[i - 2] == '<' ||
                                              t[i - 2] == '~' || t[i - 2] == '!'));
    if (!(fl & F_NOIP) && !version && (e = ipv4_at(t, n, i)) &&
        !((prev == ' ' || prev == ':' || prev == '=' || prev == '#') &&
          word_before_is(t, i, version_words, sizeof version_words / sizeof version_words[0])) &&
        !section_sign_before(t, i)) {
        *det = fl & F_CLIENTIP ? BG_DET_CLIENT_IP : BG_DET_IP_ADDRESS;
        return e;
    }
    bool colon = false;
    for (size_t k = i + 1; k < n && k <= i + 4; k++)
        if (t[k] == ':') {
            colon = true;
            break;
        }
    if (colon && prev != ':' && (e = ipv6_at(t, n, i))) {
        *det = fl & F_CLIENTIP ? BG_DET_CLIENT_IP : BG_DET_IP_ADDRESS;
        return e;
    }
    if (fl & F_CLIENTIP)
        return 0;
    if (i + 2 < n && (t[i + 2] == ':' || t[i + 2] == '-' || (i + 4 < n && t[i + 4] == '.')) && (e = mac_at(t, n, i))) {
        *det = BG_DET_MAC_ADDRESS;
        return e;
    }
    /* A coordinate pair inside prose; not inside a list ("1, 48.85661, 2.35222"), and not a whole
     * value: there the key says what the numbers are ("ratio": "40.58781,-105.72384" is none;
     * location keys are scan_value's). */
    if (i + 2 < n && (t[i + 1] == '.' || t[i + 2] == '.') && (e = coord_text_at(t, n, i, 4))) {
        size_t a = i && t[i - 1] == '-' ? i - 1 : i, b = a, z = e;
        while (b > 0 && t[b - 1] == ' ')
            b--;
        bool list = b > 0 && (t[b - 1] == '.' || isd(t[b - 1]));
        if (b > 0 && t[b - 1] == ',') { /* "1, 48.85661, 2.35222" is a list; "Paris, 48.85661, ..." not */
            size_t c = b - 1;
            while (c > 0 && t[c - 1] == ' ')
                c--;
            list = c > 0 && isd(t[c - 1]);
        }
        while (z < n && t[z] == ' ')
            z++;
        if (!list && (b > 0 || z < n) &&
            !labelled(t, a, not_coord_kw, sizeof not_coord_kw / sizeof not_coord_kw[0], 2)) {
            *det = BG_DET_COORDINATES;
            *start = a;
            return e;
        }
    }
    groups_t g;
    groups_at(t, n, i, &g);
    /* Before cards and phones: an IMEI's 15 digits pass Luhn by construction and often an issuer
     * prefix too ("IMEI: 356938035643809" is no Amex), and "my phone's IMEI is …" has a phone word. */
    if (g.digits == 15) {
        bool ctx = (fl & F_IMEICTX) || kw_before(t, i, 24, imei_kw, 1);
        if ((e = imei_at(t, n, i, &g, ctx))) {
            *det = BG_DET_IMEI;
            return e;
        }
    }
    /* An id key (ref, order_id ...) says its 12-15 digits are no card, as those labels do in
     * prose; 16 digits that pass Luhn with an issuer prefix are a card under any key (a PAN
     * pasted into a reference field is the leak to catch). Other lengths under an id key stay
     * ids: snowflake ids run 17-19 digits. */
    if ((!(fl & F_NOCARD) || g.digits == 16) && g.digits >= 12 && !(inside_grouped(t, i) && !card_grouped(&g)) &&
        (e = card_at(t, n, i, &g)) &&
        !(g.digits <= 15 && labelled(t, i, not_card_kw, sizeof not_card_kw / sizeof not_card_kw[0], 0) &&
          !kw_before(t, i, 40, card_kw, sizeof card_kw / sizeof card_kw[0]) &&
          !kw_after(t, n, e, 24, card_kw, sizeof card_kw / sizeof card_kw[0]))) {
        *det = BG_DET_CARD_NUMBER;
        return e;
    }
    if (g.digits == 9 || (i + 11 <= n && g.glen[0] == 3)) {
        bool ctx = (fl & F_SSNCTX) || (g.ngroups == 1 && g.digits == 9 &&
                                       kw_before(t, i, 40, ssn_kw, sizeof ssn_kw / sizeof ssn_kw[0]));
        if ((e = ssn_at(t, n, i, ctx))) {
            *det = BG_DET_US_SSN;
            return e;
        }
    }
    if (!(fl & F_NOPHONE) && (e = phone_at(t, n, i, false))) {
        *det = BG_DET_PHONE;
        return e;
    }
    /* A date right after "date of birth", "DOB", "born": 1990-01-31, 31/01/1990, 31.01.1990. */
    size_t g0 = i + g.glen[0];
    if ((g.glen[0] == 4 || g.glen[0] <= 2) && g0 + 1 < n && (t[g0] == '-' || t[g0] == '/' || t[g0] == '.') &&
        isd(t[g0 + 1]) && kw_before(t, i, 24, dob_kw, sizeof dob_kw / sizeof dob_kw[0])) {
        phone_t p;
        if (phone_parse(t, n, i, &p) && p.date) {
            *det = BG_DET_DATE_OF_BIRTH;
            return p.end;
        }
    }
    /* ... and with the month's name: "DOB 15 March 1985", "born on March 15, 1985". */
    size_t st = i;
    if (g.glen[0] <= 2 && g0 + 4 < n && (t[g0] == ' ' || t[g0] == ',' || isletter(t[g0])) &&
        (e = date_words(t, n, i, g.glen[0], &st)) && kw_before(t, st, 24, dob_kw, sizeof dob_kw / sizeof dob_kw[0])) {
        *det = BG_DET_DATE_OF_BIRTH;
        *start = st;
        return e;
    }
    return 0;
}

static size_t letter_start(const scan_t *s, const unsigned char *t, size_t n, size_t i, unsigned fl, unsigned *det)
{
    unsigned cl = cls[t[i]];
    size_t e;
    bool colon = false;
    if (cl & CHX)
        for (size_t k = i + 1; k < n && k <= i + 4; k++)
            if (t[k] == ':') {
                colon = true;
                break;
            }
    if (colon && (!i || t[i - 1] != ':') && (e = ipv6_at(t, n, i))) {
        *det = fl & F_CLIENTIP ? BG_DET_CLIENT_IP : BG_DET_IP_ADDRESS;
        return e;
    }
    if (fl & F_CLIENTIP)
        return 0;
    if ((cl & CHX) && i + 2 < n && (t[i + 2] == ':' || t[i + 2] == '-' || (i + 4 < n && t[i + 4] == '.')) &&
        (e = mac_at(t, n, i))) {
        *det = BG_DET_MAC_ADDRESS;
        return e;
    }
    /* A geo URI (RFC 5870): "geo:lat,lon", any precision. */
    if (t[i] == 'g' && i + 7 < n && t[i + 1] == 'e' && t[i + 2] == 'o' && t[i + 3] == ':' &&
        (e = coord_text_at(t, n, i + 4, 1))) {
        *det = BG_DET_COORDINATES;
        return e;
    }
    if (t[i] == 'e' && (e = jwt_at(t, n, i))) {
        *det = BG_DET_JWT;
        return e;
    }
    if ((e = apikey_at(t, n, i))) {
        *det = BG_DET_API_KEY;
        return e;
    }
    if ((e = iban_at(t, n, i))) {
        *det = BG_DET_IBAN;
        return e;
    }
    if ((e = nino_at(t, n, i))) {
        *det = BG_DET_UK_NINO;
        return e;
    }
    if (s->c->ncustom && (e = custom_text_at(s, t, n, i, det)))
        return e;
    return 0;
}

/* Bytes without which no built-in detector can start in a text: digits, '+', '(', ':' (phone,
 * IPv6 and number starts), '@' (e-mail), '.', '-', '_' (the separators of MACs, JWTs and API key
 * prefixes) and 'A' (AKIA/ASIA/AIza keys, the only letter-only ones). '/' rides along because
 * it sits inside the '-'..':' range. A superset is safe: it only decides whether to look. */
static const uint8_t cand[256] = {
    ['-' ... ':'] = 1, ['+'] = 1, ['('] = 1, ['@'] = 1, ['A'] = 1, ['_'] = 1,
};

#if defined(__SSE2__) && !defined(BG_NO_SIMD)
/* Bit k set when x's byte k is a candidate byte (the cand[] set). */
static inline unsigned cand_mask16(__m128i x)
{
    const __m128i lo1 = _mm_set1_epi8('-'), w1 = _mm_set1_epi8(':' - '-');
    const __m128i lo2 = _mm_set1_epi8('@'), w2 = _mm_set1_epi8('A' - '@');
    const __m128i plus = _mm_set1_epi8('+'), paren = _mm_set1_epi8('('), us = _mm_set1_epi8('_');
    __m128i y1 = _mm_sub_epi8(x, lo1), y2 = _mm_sub_epi8(x, lo2);
    __m128i m = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(y1, w1), y1), _mm_cmpeq_epi8(_mm_min_epu8(y2, w2), y2));
    m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(x, plus), _mm_or_si128(_mm_cmpeq_epi8(x, paren),
                                                                          _mm_cmpeq_epi8(x, us))));
    return (unsigned)_mm_movemask_epi8(m);
}
#endif

/* Does t[0..n) hold a candidate byte? 16 bytes a step with SSE2 (x86-64 baseline), else a table.
 * end: how far the buffer under t may be read (NULL: t + n); a short value then costs one load
 * masked to its length instead of a byte loop. */
static inline bool has_candidate(const unsigned char *t, size_t n, const unsigned char *end)
{
    size_t i = 0;
#if defined(__SSE2__) && !defined(BG_NO_SIMD)
    if (n >= 16) {
        for (; i + 16 <= n; i += 16)
            if (cand_mask16(_mm_loadu_si128((const __m128i *)(const void *)(t + i))))
                return true;
        /* The last bytes: one load that overlaps what was already seen. */
        return i < n && cand_mask16(_mm_loadu_si128((const __m128i *)(const void *)(t + n - 16))) != 0;
    }
    if (end && (size_t)(end - t) >= 16)
        return (cand_mask16(_mm_loadu_si128((const __m128i *)(const void *)t)) & ((1u << n) - 1)) != 0;
#else
    (void)end;
#endif
    for (; i < n; i++)
        if (cand[t[i]])
            return true;
    return false;
}

/* Shape pre-filters: values that are exactly one common non-personal shape, for which scan_text
 * is shown (below, detector by detector) to find nothing whatever its flags. A text has no '@'
 * (no e-mail) in any of them, and custom detectors are ruled out by the caller. Starts are the
 * bytes start_mask16 gives: an alphanumeric, '+', '(' or ':' after a non-alphanumeric. */

/* n bytes, all digits: a bare integer ("1700000000000"). Its only start is t[0], a digit:
 * ipv4_at needs dots (bg_detect_ipv4_valid), there is no ':' (IPv6) and no separator (MAC);
 * groups_at sees one group of n digits, so card_at is bg_detect_card_valid(t, n) for 12..19
 * digits and nothing for more (glen > 19); SSN needs 9 digits and IMEI 15 (with context:
 * excluded); phone_at needs 7..15 digits and, without '+', groups (NANP) or a keyword, and
 * there is no byte before or after to hold one; date of birth needs a separator. */
static bool digits_quiet(const unsigned char *t, size_t n)
{
    if (n == 9 || n == 15)
        return false;
    if (n >= 12 && n <= 19) {
        /* Issuer prefixes starting with 1 (UATP, JCB 1800) are 15 digits long (detect.c iin_ok):
         * millisecond timestamps need no card check. */
        if (t[0] == '1')
            return true;
        return !bg_detect_card_valid((const char *)t, n);
    }
    return true;
}

/* 8-4-4-4-12 hex digits (either case), no run of digits and dashes with more than 6 digits, and
 * no group starting letter, letter, digit. Starts: the groups' first bytes (groups hold 4 or
 * more bytes, so t[i+2] is no MAC separator and there is no '.' or ':': no MAC, no IPv6, no
 * IPv4). A digit start: its run of digits and dashes holds at most 6 digits, so groups_at counts
 * at most 6 (no card, no SSN in either form, no IMEI), phone_parse counts at most 6 digits (and
 * 'x' is no hex digit: no extension) and the date-of-birth keywords hold letters beyond a-f. A
 * letter start: jwt_at needs "eyJ", apikey_at a key_start pair ('A' then K, S or I), iban_at and
 * nino_at a digit (or ' ') after two letters: where a group starts that way, they are asked. */
#if defined(__SSE2__) && !defined(BG_NO_SIMD)
/* Bit k: x's byte k is a digit (*dig) or a hex letter, either case (*hexl). */
static inline void hex_masks16(__m128i x, unsigned *dig, unsigned *hexl)
{
    __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    __m128i l = _mm_sub_epi8(_mm_or_si128(x, _mm_set1_epi8(0x20)), _mm_set1_epi8('a'));
    *dig = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d));
    *hexl = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(l, _mm_set1_epi8(5)), l));
}
#endif

static bool uuid_quiet(const unsigned char *t, size_t n)
{
    if (n != 36)
        return false;
#if defined(__SSE2__) && !defined(BG_NO_SIMD)
    /* The same rules on bit masks over the 36 bytes (three loads, the last overlapping): the
     * dashes exactly at 8, 13, 18, 23, hex everywhere else, and, with the dashes squeezed out
     * (fixed places), no 7 digits in a row between hex letters. */
    {
        unsigned d0, h0, d1, h1, d2, h2;
        hex_masks16(_mm_loadu_si128((const __m128i *)(const void *)t), &d0, &h0);
        hex_masks16(_mm_loadu_si128((const __m128i *)(const void *)(t + 16)), &d1, &h1);
        hex_masks16(_mm_loadu_si128((const __m128i *)(const void *)(t + 20)), &d2, &h2);
        uint64_t dig = d0 | (uint64_t)d1 << 16 | (uint64_t)(d2 >> 12) << 32;
        uint64_t hex = dig | h0 | (uint64_t)h1 << 16 | (uint64_t)(h2 >> 12) << 32;
        const uint64_t dashes = 1ull << 8 | 1ull << 13 | 1ull << 18 | 1ull << 23, all = (1ull << 36) - 1;
        if (hex != (all & ~dashes) || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-')
            return false;
        uint64_t q = (dig & 0xff) | (dig >> 9 & 0xf) << 8 | (dig >> 14 & 0xf) << 12 | (dig >> 19 & 0xf) << 16 |
                     (dig >> 24 & 0xfff) << 20; /* 32 digit bits, dashes removed */
        uint64_t r2 = q & q >> 1, r4 = r2 & r2 >> 2, r7 = r4 & r4 >> 3; /* bit k: q[k..k+6] all set */
        if (r7)
            return false;
        /* A group starting letter, letter, digit: iban_at and nino_at are asked, as below. */
        static const uint8_t gs[5] = {0, 9, 14, 19, 24};
        for (unsigned g = 0; g < 5; g++)
            if ((dig >> gs[g] & 7) == 4 && (iban_at(t, n, gs[g]) || nino_at(t, n, gs[g])))
                return false;
        return true;
    }
#endif
    unsigned run = 0;
    for (size_t k = 0; k < 36; k++) {
        unsigned c = t[k];
        bool dash = k == 8 || k == 13 || k == 18 || k == 23;
        if (dash) {
            if (c != '-')
                return false;
            continue;
        }
        if (isd(c)) {
            if (++run > 6)
                return false;
        } else if (ishx(c)) {
            run = 0;
        } else {
            return false;
        }
    }
    static const uint8_t gs[5] = {0, 9, 14, 19, 24};
    for (unsigned g = 0; g < 5; g++) {
        const unsigned char *p = t + gs[g];
        if (!isd(p[0]) && !isd(p[1]) && isd(p[2]) && (iban_at(t, n, gs[g]) || nino_at(t, n, gs[g])))
            return false;
    }
    return true;
}

/* An ISO-8601 timestamp: dddd-dd-ddTdd:dd:dd, then .d{1,9}, then Z or +dd:dd / -dd:dd, each
 * optional. Starts: t[0] (the date: no dots for IPv4, no ':' within 4 bytes, groups 4-2-2 with 8
 * digits, then 'T', a letter, ends phone_parse with a failure and no keyword precedes t[0]); the
 * date's later digits follow "d-" (inside a dashed number: not starts); 'T' and ':' follow a
 * digit (not starts); the minutes (prev ':' so no IPv6; ':' at +2 but no sixth group, so no
 * MAC; 2 digits then ':'); the seconds (2 digits then '.', 'Z', '+', '-' or the end: IPv4 needs
 * four parts, phone_parse stops at 'Z' (a letter: fails) or counts at most 11 digits with no
 * keyword (the text's only letters are T and Z); no separator after 2 digits for a date); the
 * fraction follows '.' (not a start); the offset's hours after '+' (2 digits then ':': one colon
 * is no IPv6, the MAC shapes need 14 or 17 bytes) or after "d-" (not a start); its minutes
 * after ':' (2 digits at the end). */
static bool iso_time_quiet(const unsigned char *t, size_t n)
{
    if (n < 19)
        return false;
#if defined(__SSE2__) && !defined(BG_NO_SIMD)
    /* The 19-byte shape with two loads (t[0..16) and t[3..19)): digits where it says 'd', its
     * own bytes elsewhere. */
    {
        const __m128i lit0 = _mm_setr_epi8(0, 0, 0, 0, '-', 0, 0, '-', 0, 0, 'T', 0, 0, ':', 0, 0);
        const __m128i lit1 = _mm_setr_epi8(0, '-', 0, 0, '-', 0, 0, 'T', 0, 0, ':', 0, 0, ':', 0, 0);
        const unsigned dm0 = 0xffffu & ~(1u << 4 | 1u << 7 | 1u << 10 | 1u << 13);
        const unsigned dm1 = 0xffffu & ~(1u << 1 | 1u << 4 | 1u << 7 | 1u << 10 | 1u << 13);
        __m128i x0 = _mm_loadu_si128((const __m128i *)(const void *)t);
        __m128i x1 = _mm_loadu_si128((const __m128i *)(const void *)(t + 3));
        __m128i d0 = _mm_sub_epi8(x0, _mm_set1_epi8('0')), d1 = _mm_sub_epi8(x1, _mm_set1_epi8('0'));
        unsigned g0 = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d0, _mm_set1_epi8(9)), d0));
        unsigned g1 = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d1, _mm_set1_epi8(9)), d1));
        unsigned e0 = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x0, lit0));
        unsigned e1 = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x1, lit1));
        if ((g0 & dm0) != dm0 || (e0 & ~dm0 & 0xffffu) != (~dm0 & 0xffffu) || (g1 & dm1) != dm1 ||
            (e1 & ~dm1 & 0xffffu) != (~dm1 & 0xffffu))
            return false;
    }
#else
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    for (size_t k = 0; k < 19; k++)
        if (shape[k] == 'd' ? !isd(t[k]) : t[k] != (unsigned char)shape[k])
            return false;
#endif
    size_t k = 19;
    if (k < n && t[k] == '.') {
        size_t f = ++k;
        while (k < n && isd(t[k]) && k - f < 10)
            k++;
        if (k == f || k - f > 9)
            return false;
    }
    if (k < n && t[k] == 'Z')
        k++;
    else if (k + 6 == n && (t[k] == '+' || t[k] == '-') && isd(t[k + 1]) && isd(t[k + 2]) && t[k + 3] == ':' &&
             isd(t[k + 4]) && isd(t[k + 5]))
        k += 6;
    return k == n;
}

/* An uppercase code, 1 to 6 letters, '-', 1 to 6 digits ("SKU-00042"): at most 13 bytes. Starts:
 * t[0] (a letter: no ':' (IPv6); MAC shapes need 14 or 17 bytes; no lowercase 'e' (JWT);
 * API keys need 16 or more bytes after a prefix; an IBAN 15 bytes; a NINO two letters then a
 * digit or ' ', where here comes a letter or '-') and the digits after '-' (at most 6 digits
 * to the end: no IPv4, card, SSN, IMEI or phone, and no separator for a date). */
static bool code_quiet(const unsigned char *t, size_t n)
{
    size_t k = 0;
    while (k < n && k < 7 && (cls[t[k]] & CU))
        k++;
    if (k == 0 || k > 6 || k >= n || t[k] != '-')
        return false;
    size_t d = ++k;
    while (k < n && isd(t[k]))
        k++;
    return k == n && k > d && k - d <= 6;
}

#if defined(__SSE2__) && !defined(BG_NO_SIMD)
/* Bits set in a 16-bit mask, inline (without -mpopcnt __builtin_popcount is a libgcc call). */
static inline __attribute__((always_inline)) unsigned pop16(unsigned x)
{
    x = x - ((x >> 1) & 0x5555u);
    x = (x & 0x3333u) + ((x >> 2) & 0x3333u);
    x = (x + (x >> 4)) & 0x0f0fu;
    return (x + (x >> 8)) & 0x1fu;
}

/* text_quick_skip's rules below for a value of at most 16 bytes, from one 16-byte load (the
 * buffer holds t[0..16)): the candidate test, the run of number bytes, the short-number rule and
 * the code shape as bit masks over t[0..n). (The timestamp and UUID shapes need 19 or more bytes.) */
static inline __attribute__((always_inline)) bool text_quick_skip16(const unsigned char *t, size_t n)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)t);
    unsigned all = (1u << n) - 1;
    if (!(cand_mask16(x) & all))
        return true;
    __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    unsigned dig = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d)) & all;
    unsigned dot = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('.'))) & all;
    unsigned sign = (unsigned)_mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('-')), _mm_cmpeq_epi8(x, _mm_set1_epi8('+'))));
    unsigned k = (unsigned)__builtin_ctz(~(dig | dot | (sign & all))); /* the run of number bytes */
    if (k == n) {
        unsigned digits = pop16(dig), dots = pop16(dot);
        return (digits < 7 && dots < 3) || (digits == n && digits_quiet(t, n));
    }
    if (k != 0 || n > 13)
        return false;
    /* code_quiet: 1 to 6 uppercase letters, '-', then 1 to 6 digits to the end. */
    __m128i u = _mm_sub_epi8(x, _mm_set1_epi8('A'));
    unsigned up = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(u, _mm_set1_epi8(25)), u));
    unsigned lead = (unsigned)__builtin_ctz(~up);
    if (lead == 0 || lead > 6 || lead >= n || t[lead] != '-')
        return false;
    unsigned nd = (unsigned)n - lead - 1, want = ((1u << nd) - 1) << (lead + 1);
    return nd >= 1 && nd <= 6 && (dig & want) == want;
}
#endif

/* Could t[0..n) be base64 of a JSON object or array (b64_json_shape, below)? Its first bytes. */
static inline bool b64_json_lead(const unsigned char *t, size_t n)
{
    return n > 16 && ((t[0] == 'e' && t[1] == 'y') || (t[0] == 'W' && (t[1] == '3' || t[1] == 'y')));
}

/* Would scan_text(t[0..n)) return at once, finding nothing, whatever its flags? Its early exits,
 * shared with scan_json's fast path so that the two stay one rule. */
static inline __attribute__((always_inline)) bool text_quick_skip(const scan_t *s, const unsigned char *t, size_t n,
                                                                 const unsigned char *end)
{
    /* Custom text detectors have prefixes of their own, so with them every value is scanned. */
    if (s->c->ncustom)
        return false;
#if defined(__SSE2__) && !defined(BG_NO_SIMD)
    if (n <= 16 && end && end - t >= 16)
        return text_quick_skip16(t, n);
#endif
    /* Most values (words, names, enums) hold no candidate byte: nothing to scan, unless they are
     * base64 of JSON (b64_json_lead needs more than 16 bytes: text_quick_skip16 never sees one). */
    if (!has_candidate(t, n, end))
        return !b64_json_lead(t, n);
#if defined(__SSE2__) && !defined(BG_NO_SIMD)
    if (n > 16) {
        /* The run of number bytes below from one load: when it stops within the first 16
         * bytes it stops before n, so its digits and dots are not needed (rules below). */
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)t);
        __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
        __m128i num = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d),
                                   _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('.')),
                                                _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('-')),
                                                             _mm_cmpeq_epi8(x, _mm_set1_epi8('+')))));
        unsigned nm = (unsigned)_mm_movemask_epi8(num);
        if (nm != 0xffffu) {
            unsigned k = (unsigned)__builtin_ctz(~nm);
            if (k == 10 && t[10] == 'T')
                return iso_time_quiet(t, n);
            if (n == 36)
                return uuid_quiet(t, n);
            return false; /* k == 0 && n <= 13 cannot hold */
        }
    }
#endif
    /* A short number ("100001", "12.34", "-7", "1.2.3"): every detector that can fire on digits,
     * dots, '-' and '+' alone needs 7 or more digits (phone 7, SSN 9, card 12, MAC 12, IMEI 15) or
     * three dots (IPv4); the keyword rules (date of birth) need letters. Nothing to scan. */
    size_t digits = 0, dots = 0, k = 0;
    for (; k < n; k++) {
        unsigned c = t[k];
        if (isd(c))
            digits++;
        else if (c == '.')
            dots++;
        else if (c != '-' && c != '+')
            break;
    }
    if (k == n)
        return (digits < 7 && dots < 3) || (digits == n && digits_quiet(t, n));
    /* The shapes above, told apart by where the run of number bytes stopped. */
    if (k == 10 && t[10] == 'T')
        return iso_time_quiet(t, n);
    if (n == 36)
        return uuid_quiet(t, n);
    return k == 0 && n <= 13 && code_quiet(t, n);
}

/* text_quick_skip for a JSON number token t[0..n) of the given shape (BGJ_NUM_* bits, known
 * from scanning it): an exponent letter ends the short-number rule's run of number bytes; else
 * the grammar's one '-' and one '.' at most leave n less those digits, and a bare integer over
 * 9 bytes is text_quick_skip's all-digits rule. */
static inline bool number_quick_skip(const scan_t *s, const unsigned char *t, size_t n, unsigned shape)
{
    if (s->c->ncustom || (shape & BGJ_NUM_EXP))
        return false;
    if (!shape && n > 9)
        return digits_quiet(t, n);
    return n - (shape & BGJ_NUM_NEG) - (shape >> 1) < 7; /* shape >> 1: BGJ_NUM_FRAC, no EXP here */
}

/* Where the text scanner may start a detector in t[base, base+16) ∩ [0, n): bit k for t[base+k]
 * when that byte is a letter, digit, '+', '(' or ':' and the byte before it is not a letter or
 * digit (a word is looked at from its first byte only). *prev_alnum carries the last byte's
 * class from one block to the next. 16 bytes a step with SSE2; a byte loop otherwise. */
static inline unsigned start_mask16(const unsigned char *t, size_t base, size_t n, unsigned *prev_alnum)
{
    size_t len = n - base < 16 ? n - base : 16;
#if defined(__SSE2__) && !defined(BG_NO_SIMD)
    __m128i x;
    unsigned sh = 0; /* a tail read as the value's last 16 bytes: its masks are shifted down */
    if (len == 16) {
        x = _mm_loadu_si128((const __m128i *)(const void *)(t + base));
    } else if (n >= 16) {
        x = _mm_loadu_si128((const __m128i *)(const void *)(t + n - 16));
        sh = (unsigned)(16 - len);
    } else {
        /* A value under 16 bytes: copied into zeros (NUL is no class: beyond n nothing starts)
         * with overlapping word moves rather than a memcpy call of variable length. */
        unsigned char pad[16] = {0};
        if (len >= 8) {
            uint64_t w0, w1;
            memcpy(&w0, t + base, 8);
            memcpy(&w1, t + n - 8, 8);
            memcpy(pad, &w0, 8);
            memcpy(pad + len - 8, &w1, 8);
        } else if (len >= 4) {
            uint32_t w0, w1;
            memcpy(&w0, t + base, 4);
            memcpy(&w1, t + n - 4, 4);
            memcpy(pad, &w0, 4);
            memcpy(pad + len - 4, &w1, 4);
        } else {
            for (size_t k = 0; k < len; k++)
                pad[k] = t[base + k];
        }
        x = _mm_loadu_si128((const __m128i *)(const void *)pad);
    }
    __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    __m128i l = _mm_sub_epi8(_mm_or_si128(x, _mm_set1_epi8(0x20)), _mm_set1_epi8('a'));
    __m128i alnum = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d),
                                 _mm_cmpeq_epi8(_mm_min_epu8(l, _mm_set1_epi8(25)), l));
    __m128i other =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('+')), _mm_cmpeq_epi8(x, _mm_set1_epi8('('))),
                     _mm_cmpeq_epi8(x, _mm_set1_epi8(':')));
    unsigned am = (unsigned)_mm_movemask_epi8(alnum) >> sh;
    unsigned em = am | (unsigned)_mm_movemask_epi8(other) >> sh;
#else
    unsigned am = 0, em = 0;
    for (size_t k = 0; k < len; k++) {
        unsigned cl = cls[t[base + k]];
        am |= (unsigned)((cl & CA) != 0) << k;
        em |= (unsigned)(cl && !(cl & CB)) << k;
    }
#endif
    unsigned starts = em & ~((am << 1) | *prev_alnum) & 0xffffu;
    *prev_alnum = am >> 15 & 1;
    return starts;
}

/* Room for more e-mail spans: the first ESPAN_FIRST live in bg_classify's frame (no malloc and
 * free per call that finds an e-mail), more in a block twice as large each time. */
#define ESPAN_FIRST 8

static __attribute__((noinline, cold)) void espan_grow(scan_t *s)
{
    size_t cap = s->espan_cap ? 2 * s->espan_cap : 16;
    size_t (*e)[2] = s->espan_heap ? realloc(s->espan, cap * sizeof *e) : malloc(cap * sizeof *e);
    if (!e)
        abort();
    if (!s->espan_heap && s->espan_cap)
        memcpy(e, s->espan, s->espan_cap * sizeof *e);
    s->espan = e;
    s->espan_cap = cap;
    s->espan_heap = true;
}

static void scan_text(scan_t *s, const val_t *v, unsigned fl)
{
    const unsigned char *t = v->t;
    size_t n = v->n;
    size_t ne = 0, ei = 0;
    if (!v->not_quick && text_quick_skip(s, t, n, NULL))
        return;
    if (!(fl & F_CLIENTIP)) {
        const unsigned char *p = memchr(t, '@', n);
        while (p) {
            size_t at = (size_t)(p - t), a, b;
            if (email_around(t, n, at, &a, &b)) {
                emit_v(s, BG_DET_EMAIL, v, a, b);
                if (ne == s->espan_cap)
                    espan_grow(s);
                s->espan[ne][0] = a;
                s->espan[ne][1] = b;
                ne++;
                at = b > at ? b - 1 : at;
            }
            p = at + 1 < n ? memchr(t + at + 1, '@', n - at - 1) : NULL;
        }
    }
    /* The start positions come from a bit mask per 16 bytes (start_mask16); positions below
     * `from` were consumed by a finding or an e-mail. */
    size_t from = 0;
    unsigned prev_alnum = 0;
    for (size_t base = 0; base < n; base += 16) {
        unsigned m = start_mask16(t, base, n, &prev_alnum);
        while (m) {
            size_t i = base + (unsigned)__builtin_ctz(m);
            m &= m - 1;
            if (i < from)
                continue;
            unsigned c = t[i], cl = cls[c];
            /* Inside a dotted or dashed number ("1.2.3.4.5", "978-3-16"): not a start. */
            if (i && (cl & CD) && (t[i - 1] == '.' || (t[i - 1] == '-' && i >= 2 && isd(t[i - 2]))))
                continue;
            while (ei < ne && s->espan[ei][1] <= i)
                ei++;
            if (ei < ne && s->espan[ei][0] <= i) {
                from = s->espan[ei][1];
                continue;
            }
            size_t e = 0, st = i;
            unsigned det = 0;
            if ((cl & (CU | CL)) && !s->c->ncustom) {
                /* Cheap gate for words: only shapes that some detector can start. (A word's other
                 * letters are not starts: the mask skips the rest of it.) */
                unsigned c1 = i + 1 < n ? t[i + 1] : 0, c2 = i + 2 < n ? t[i + 2] : 0;
                bool maybe = isd(c2) || c2 == ' ' || c2 == ':' || c2 == '-' || c1 == ':' ||
                             (i + 3 < n && t[i + 3] == ':') || (i + 4 < n && (t[i + 4] == ':' || t[i + 4] == '.')) ||
                             (c == 'e' && c1 == 'y') || key_start(c, c1);
                if (!maybe)
                    continue;
            }
            if (cl & CD)
                e = digit_start(t, n, i, fl, &det, &st);
            else if (c == '+' || c == '(') {
                if (!(fl & (F_NOPHONE | F_CLIENTIP)) && (e = phone_at(t, n, i, false)))
                    det = BG_DET_PHONE;
            } else if (c == ':') {
                if ((!i || t[i - 1] != ':') && (e = ipv6_at(t, n, i)))
                    det = fl & F_CLIENTIP ? BG_DET_CLIENT_IP : BG_DET_IP_ADDRESS;
            } else {
                e = letter_start(s, t, n, i, fl, &det);
            }
            if (e > i) {
                if (ei < ne && s->espan[ei][0] < e)
                    continue; /* would cut into an e-mail */
                if (s->binary && det == BG_DET_IP_ADDRESS && ipv6_short(t + i, e - i))
                    continue;
                /* A span that begins before i (a month's name before its day) stays clear of what
                 * was consumed and of an e-mail ending there. */
                if (st < i && (st < from || (ei && s->espan[ei - 1][1] > st)))
                    st = i;
                emit_v(s, det, v, st, e);
                from = e;
            }
            /* Else nothing starts here, and the rest of a word is not a start either. */
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Key rules over whole values                                                                */

static bool person_ok(const unsigned char *t, size_t n, bool strict)
{
    if (n < 2 || n > 100)
        return false;
    unsigned letters = 0, upper = 0, other = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = t[i];
        if (cls[c] & CU)
            letters++, upper++;
        else if (cls[c] & CL)
            letters++;
        else if (c >= 0x80)
            letters++, other++;
        else if (c != ' ' && c != '.' && c != '\'' && c != '-' && c != ',')
            return false;
    }
    if (letters < 2)
        return false;
    return !strict || upper || other;
}

static bool dob_ok(const unsigned char *t, size_t n)
{
    if (n > 40)
        return false;
    unsigned d = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = t[i];
        /* A date serialised with its time ("1985-03-14T00:00:00.000Z", as JavaScript's Date
         * writes one): the date is the value, the time's digits are not counted. */
        if (c == 'T' && i >= 8 && isd(t[i - 1]) && i + 1 < n && isd(t[i + 1])) {
            for (size_t k = i + 1; k < n; k++)
                if (!isd(t[k]) && t[k] != ':' && t[k] != '.' && t[k] != '+' && t[k] != '-' && t[k] != 'Z')
                    return false;
            break;
        }
        if (isd(c))
            d++;
        else if (!isal(c) && c != ' ' && c != '-' && c != '/' && c != '.' && c != ',' && c != ':' && c != '+')
            return false;
    }
    return d >= 4 && d <= 14;
}

/* A decimal number in [-lim, lim]; *end after it. */
static bool coord_num(const unsigned char *t, size_t n, size_t *i, double lim)
{
    size_t j = *i;
    char buf[32];
    size_t l = 0;
    if (j < n && (t[j] == '-' || t[j] == '+'))
        buf[l++] = (char)t[j++];
    size_t st = j;
    bool dot = false;
    while (j < n && l < sizeof buf - 1 && (isd(t[j]) || (t[j] == '.' && !dot))) {
        dot |= t[j] == '.';
        buf[l++] = (char)t[j++];
    }
    if (j == st || !isd(t[st]) || !isd(t[j - 1]))
        return false;
    buf[l] = 0;
    double v = strtod(buf, NULL);
    if (v < -lim || v > lim)
        return false;
    *i = j;
    return true;
}

static bool coord_pair(const unsigned char *t, size_t n)
{
    size_t i = 0;
    if (!coord_num(t, n, &i, 90) || !memchr(t, '.', i))
        return false;
    size_t m = i;
    while (i < n && t[i] == ' ')
        i++;
    if (i >= n || (t[i] != ',' && t[i] != ';'))
        return false;
    i++;
    while (i < n && t[i] == ' ')
        i++;
    size_t st = i;
    if (!coord_num(t, n, &i, 180) || !memchr(t + st, '.', i - st))
        return false;
    (void)m;
    return i == n;
}

/* One coordinate of an array under a location key (GeoJSON's [lng, lat], [lat, lng] pairs,
 * polygons): a decimal within +-180 with at least three decimals (a fix to ~100 m, as GPS and
 * geocoders write them; a layout's "position": [12.5, 40.25] has fewer). */
static bool coord_elem(const unsigned char *t, size_t n)
{
    size_t i = 0;
    if (!coord_num(t, n, &i, 180) || i != n)
        return false;
    const unsigned char *dot = memchr(t, '.', n);
    return dot && n - (size_t)(dot - t) > 3;
}

static bool custom_value(const custom_t *u, const unsigned char *t, size_t n)
{
    size_t j = 0;
    if (u->prefix) {
        if (n < u->prefix_len || memcmp(t, u->prefix, u->prefix_len) != 0)
            return false;
        j = u->prefix_len;
    }
    if (u->digits >= 0) {
        if (n - j != (size_t)u->digits)
            return false;
        for (; j < n; j++)
            if (!isd(t[j]))
                return false;
        return true;
    }
    return n > 0;
}

/* The key flags scan_value applies to a value itself; the others only steer scan_text. */
#define VALUE_RULES (K_CUSTOM | K_CRED | K_DEVICE | K_LAT | K_LNG | K_GEO | K_PHONE | K_SSN | K_NINO | K_DOB | K_NAME)

/* Scan one value with its key context. ai: the value is an AI prompt/response here. */
static void scan_value(scan_t *s, kinfo_t ki, const val_t *v, bool ai, bool bare_name)
{
    const unsigned char *t = v->t;
    uint32_t k = ki.flags;
    /* No key rule and no prompt: only the text detectors apply (blank values find nothing). */
    if (!k && !ai) {
        scan_text(s, v, 0);
        return;
    }
    size_t a = 0, b = v->n;
    while (a < b && (t[a] == ' ' || t[a] == '\t'))
        a++;
    while (b > a && (t[b - 1] == ' ' || t[b - 1] == '\t'))
        b--;
    if (a == b)
        return;
    const unsigned char *w = t + a;
    size_t wn = b - a;
    if ((k & K_CUSTOM) && ki.custom >= 0 && custom_value(&s->c->custom[ki.custom], w, wn)) {
        emit_v(s, BG_DET__BUILTIN + (unsigned)ki.custom, v, a, b);
        return;
    }
    if (ai) {
        /* The prompt is sealed whole; what is inside it still adds its categories, to the
         * prompt's covers too, so that sealing by category seals the prompt for an e-mail in it.
         * A prompt not kept (detector off, findings full) leaves its contents findings of their
         * own. */
        emit_v(s, BG_DET_AI_PROMPT, v, a, b);
        size_t nf = s->out->nfindings;
        const bg_finding_t *last = nf ? &s->out->findings[nf - 1] : NULL;
        bool kept = last && last->detector == BG_DET_AI_PROMPT && last->where == s->where &&
                    last->offset == v->rawoff + vmap(v, a);
        s->cats_only = kept;
        s->cover = kept ? nf - 1 : 0;
        scan_text(s, v, 0);
        s->cats_only = false;
        return;
    }
    unsigned fl = 0;
    if (k & K_CRED) {
        size_t x = a;
        static const char *const schemes[] = {"bearer ", "basic ", "token ", "bot "};
        for (size_t q = 0; q < 4; q++) {
            size_t sl = strlen(schemes[q]);
            if (b - x > sl && bg_span_ieq((const char *)t + x, sl, schemes[q]))
                x += sl;
        }
        while (x < b && t[x] == ' ')
            x++;
        bool space = memchr(t + x, ' ', b - x) != NULL;
        if (b - x >= 8 && !space) {
            emit_v(s, jwt_at(t, b, x) == b ? BG_DET_JWT : BG_DET_API_KEY, v, x, b);
            return;
        }
    }
    if (k & K_DEVICE) {
        bool tok = wn >= 8 && wn <= 128, zeros = true;
        for (size_t i = 0; i < wn && tok; i++) {
            tok = isal(w[i]) || w[i] == '-' || w[i] == ':' || w[i] == '.' || w[i] == '_';
            zeros &= w[i] == '0' || w[i] == '-';
        }
        if (tok && !zeros) {
            unsigned det = BG_DET_DEVICE_ID;
            if (mac_at(t, b, a) == b)
                det = BG_DET_MAC_ADDRESS;
            else if (k & K_IMEI) {
                char d[20];
                size_t nd = 0;
                for (size_t i = 0; i < wn && nd < 20; i++)
                    if (isd(w[i]))
                        d[nd++] = (char)w[i];
                if (nd == 15 && bg_detect_luhn(d, nd))
                    det = BG_DET_IMEI;
            }
            emit_v(s, det, v, a, b);
            return;
        }
    }
    if (k & (K_LAT | K_LNG)) {
        size_t i = a;
        if (coord_num(t, b, &i, (k & K_LAT) ? 90 : 180) && i == b) {
            emit_v(s, BG_DET_COORDINATES, v, a, b);
            return;
        }
    }
    if ((k & K_GEOARR) && coord_elem(w, wn)) {
        emit_v(s, BG_DET_COORDINATES, v, a, b);
        return;
    }
    if ((k & K_GEO) && coord_pair(w, wn)) {
        emit_v(s, BG_DET_COORDINATES, v, a, b);
        return;
    }
    if (k & K_PHONE) {
        if (phone_at(t, b, a, true) == b) {
            emit_v(s, BG_DET_PHONE, v, a, b);
            return;
        }
    }
    if (k & K_SSN) {
        if (bg_detect_ssn_valid((const char *)w, wn)) {
            emit_v(s, BG_DET_US_SSN, v, a, b);
            return;
        }
        fl |= F_SSNCTX;
    }
    if ((k & K_NINO) && nino_at(t, b, a) == b) {
        emit_v(s, BG_DET_UK_NINO, v, a, b);
        return;
    }
    if ((k & K_DOB) && dob_ok(w, wn)) {
        emit_v(s, BG_DET_DATE_OF_BIRTH, v, a, b);
        return;
    }
    if ((k & K_NAME) && person_ok(w, wn, false)) {
        emit_v(s, BG_DET_PERSON_NAME, v, a, b);
        return;
    }
    if (bare_name && (k & K_NAME_BARE) && person_ok(w, wn, true)) {
        emit_v(s, BG_DET_PERSON_NAME, v, a, b);
        return;
    }
    if (k & K_IMEI)
        fl |= F_IMEICTX;
    if (k & K_VERSION)
        fl |= F_NOIP;
    if (k & K_IDNUM)
        fl |= F_NOCARD | F_NOPHONE;
    scan_text(s, v, fl);
}

/* ------------------------------------------------------------------------------------------ */
/* JSON                                                                                       */


static void make_val(scan_t *s, val_t *v, size_t rawoff, const char *raw, size_t n, bool escaped)
{
    v->rawoff = rawoff;
    v->plus = false;
    v->not_quick = false;
    if (!escaped) {
        v->t = (const unsigned char *)raw;
        v->n = n;
        v->map = NULL;
        return;
    }
    scratch(s, n);
    v->n = bg_json_unescape(raw, n, s->dec, s->map);
    v->t = (const unsigned char *)s->dec;
    v->map = s->map;
}

static void flush_pending(scan_t *s, unsigned depth, bool product)
{
    while (s->npending && s->pending[s->npending - 1].depth == depth) {
        pending_t *p = &s->pending[--s->npending];
        if (!product) {
            s->json_string = true;
            emit_path(s, BG_DET_PERSON_NAME, p->off, p->len, p->encoded, p->path);
        }
    }
}

/* scan_value for a raw value with no key rule (flags ki) at body[off, off + v->n) that
 * text_quick_skip did not wave through: skipped when the same bytes under the same key flags
 * found nothing before in this body. Out of line: the JSON walk's loop stays small. */
/* p[0..n) == q[0..n) for n > 16 when their first and last eight bytes are known equal: up to 32
 * bytes the middle is the words at 8 and n - 16 (no call), beyond that memcmp. */
static inline bool mid_eq(const char *p, const char *q, size_t n)
{
    if (n > 32)
        return memcmp(p, q, n) == 0;
    uint64_t p1, p2, q1, q2;
    memcpy(&p1, p + 8, 8);
    memcpy(&q1, q + 8, 8);
    memcpy(&p2, p + n - 16, 8);
    memcpy(&q2, q + n - 16, 8);
    return p1 == q1 && p2 == q2;
}

static __attribute__((noinline)) void scan_value_memo(scan_t *s, kinfo_t ki, val_t *v, const char *body, size_t off)
{
    uint64_t a, b;
    rk_print((const char *)v->t, v->n, &a, &b);
    unsigned x = (unsigned)(rk_hash(a, b, v->n) >> 58); /* QMEMO == 64 */
    qmemo_t *e = &s->qmemo[x];
    if ((s->qm_valid >> x & 1) && e->len == v->n && e->flags == ki.flags && e->a == a && e->b == b &&
        (v->n <= 16 || mid_eq(body + e->off, (const char *)v->t, v->n)))
        return;
    size_t nemit = s->nemit;
    if (ki.flags)
        scan_value(s, ki, v, false, false);
    else
        scan_text(s, v, 0); /* what scan_value does for a value with no key flags */
    if (s->nemit == nemit && off + v->n <= UINT32_MAX) {
        e->a = a;
        e->b = b;
        e->off = (uint32_t)off;
        e->len = (uint32_t)v->n;
        e->flags = ki.flags;
        s->qm_valid |= 1ull << x;
    }
}

/* A value that is base64 (or base64url) of a JSON object or array: analytics APIs send events
 * that way in query and form parameters (`/track?data=eyJldmVudCI6…`), stream and queue APIs carry
 * records so inside JSON (`{"Data":"eyJ…"}`, `{"messages":[{"data":"eyJ…"}]}`), and frameworks keep
 * state so in cookies and headers. The personal data in them is as plain as in a JSON body once
 * decoded. The first bytes decide before anything else is read: '{' encodes to "ey", "[{" / "[\""
 * to "W3" / "Wy". A JWT has dots: not this, and its own detector. */
static bool b64_json_shape(const unsigned char *t, size_t n)
{
    if (n > (1u << 20) || !b64_json_lead(t, n))
        return false;
    size_t i = 0;
    while (i < n && (isal(t[i]) || t[i] == '+' || t[i] == '/' || t[i] == '-' || t[i] == '_'))
        i++;
    size_t pad = 0;
    while (i < n && t[i] == '=' && pad < 2)
        i++, pad++;
    return i == n;
}

/* Decode what b64_json_shape accepted into out (3 bytes per 4, a short tail as far as it goes);
 * returns the length. */
static size_t b64_decode(const unsigned char *t, size_t n, unsigned char *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n && t[i] != '='; i++) {
        int d = bg_b64_digit(t[i], false); /* either alphabet: b64_json_shape let both through */
        acc = acc << 6 | (uint32_t)(d >= 0 ? d : bg_b64_digit(t[i], true));
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

static int classify(const bg_classifier_t *c, const bg_classify_input_t *in, bg_classification_t *out,
                    unsigned depth);

/* Base64-JSON inside base64-JSON is read this many levels deep; one more makes the request
 * unscannable ("encoding_too_deep"): each level is a whole classification on the stack, and data
 * wrapped deeper than any real sender wraps it is not passed unread. */
#define B64_NEST_MAX 4

/* Classify the JSON inside base64 value v (b64_json_shape) and record what it holds as findings over
 * the whole value: it can only be sealed whole, and the encoded bytes are what travels. Its first
 * finding's detector is counted; the categories of the rest go to that finding's covers. */
static __attribute__((noinline, cold)) void scan_b64_json(scan_t *s, const val_t *v)
{
    if (s->depth >= B64_NEST_MAX) {
        s->too_deep = true;
        return;
    }
    unsigned char *dec = malloc(v->n / 4 * 3 + 3);
    if (!dec)
        abort();
    size_t dn = b64_decode(v->t, v->n, dec);
    size_t k = 0;
    while (k < dn && (dec[k] == ' ' || dec[k] == '\t' || dec[k] == '\r' || dec[k] == '\n'))
        k++;
    if (k < dn && (dec[k] == '{' || dec[k] == '[')) {
        static const bg_header_t json_ct = {"Content-Type", 12, "application/json", 16};
        bg_classify_input_t in = {.headers = &json_ct, .nheaders = 1, .body = (const char *)dec, .body_len = dn,
                                  .ai_route = s->ai_route, .skip_locations = true};
        bg_classification_t sub;
        bg_classification_init(&sub, s->c);
        if (classify(s->c, &in, &sub, s->depth + 1) == 0) {
            /* All over the same span: the first is kept and counted, the rest add to its covers. */
            for (size_t i = 0; i < sub.nfindings; i++)
                emit_v(s, sub.findings[i].detector, v, 0, v->n);
            s->out->categories |= sub.categories; /* what lay under a longer finding inside too */
            if (sub.unscannable && strcmp(sub.unscannable_reason, "encoding_too_deep") == 0)
                s->too_deep = true;
        }
        bg_classification_dispose(&sub);
    }
    bg_wipe(dec, dn);
    free(dec);
}

/* v, a decoded value, when it is base64-JSON (b64_json_shape). A JSON string value's raw bytes
 * start as its decoded ones do even from encoders that escape '/' as "\/". */
static inline void scan_if_b64_json(scan_t *s, const val_t *v)
{
    if (__builtin_expect(b64_json_lead(v->t, v->n), 0) && b64_json_shape(v->t, v->n))
        scan_b64_json(s, v);
}


/* One scalar value, a string (str) or a number, at body[vs, vs + vl), under the rule ki of the
 * key over it (top's current key, or the key holding the array top); a number's BGJ_NUM_* shape
 * in nshape: decides whether a detector runs on it, and runs it. Inlined twice, so that each copy knows which of the two it has. */
static inline __attribute__((always_inline)) void json_scalar(scan_t *s, frame_t *top, const char *body, size_t n,
                                                              uint32_t vs, uint32_t vl, bool esc, bool str,
                                                              unsigned nshape, uint32_t kflags)
{
    const unsigned char *bend = (const unsigned char *)body + n;
    bool ai = str && s->ai_route &&
              ((kflags & K_AI) || ((top->inherit & K_AI) && ((kflags & K_AI_TEXT) || !top->is_obj)));
    /* Most values have no rule of their key to apply and nothing a text detector could start
     * on: skip the call chain (scan_value would only reach scan_text's early exit). */
    int quick = -1; /* text_quick_skip's answer for the raw value, when asked */
    if (!esc && !ai && !(kflags & (VALUE_RULES | K_NAME_BARE))) {
        quick = str ? text_quick_skip(s, (const unsigned char *)body + vs, vl, bend)
                    : number_quick_skip(s, (const unsigned char *)body + vs, vl, nshape);
        if (quick)
            return;
    }
    val_t v;
    make_val(s, &v, vs, body + vs, vl, esc);
    s->json_string = str;
    if (str && top->is_obj && (kflags & K_NAME_BARE) && !ai) {
        uint32_t parent = top > s->frames ? top[-1].kflags : 0;
        if (!(parent & K_NONPERSON) && !top->product && person_ok(v.t, v.n, true)) {
            if (s->npending < MAX_PENDING) {
                pending_t *p = &s->pending[s->npending++];
                p->depth = s->nframes;
                p->off = vs;
                p->len = vl;
                p->encoded = esc;
                if (!s->skip_loc)
                    json_path(s, p->path);
            } else {
                emit_v(s, BG_DET_PERSON_NAME, &v, 0, v.n);
            }
            return;
        }
        kflags &= ~K_NAME_BARE;
    }
    if (quick == 0) {
        /* A raw value with no key rule that text_quick_skip could not wave through. */
        v.not_quick = true;
        scan_value_memo(s, (kinfo_t){kflags, top->custom}, &v, body, vs);
    } else if (ai || (kflags & VALUE_RULES) ||
               !(quick >= 0 ? quick : text_quick_skip(s, v.t, v.n, esc ? NULL : bend))) {
        v.not_quick = !ai && !(kflags & VALUE_RULES);
        if ((kflags & K_GEO) && !top->is_obj)
            kflags |= K_GEOARR; /* "coordinates": [2.3522, 48.8566] */
        scan_value(s, (kinfo_t){kflags, top->custom}, &v, ai, false);
    }
    if (str) /* text_quick_skip lets every value that could be base64-JSON come this far */
        scan_if_b64_json(s, &v);
}

/* The JSON walk is the tokenizer's state machine (json_core.h's bgj_next_token, state for
 * state: the same bytes accepted, the same errors) with the walk's work done where each token
 * is recognised: a key is looked up as soon as its closing quote is found, a value is scanned
 * under the key rule held in a local, and every transition jumps to the next state's label
 * (no token record, no state variable, no dispatch on either). The frames are the container
 * stack: their depth is the tokenizer's depth and the top's kind says what may follow a value. */
/* {"ann@example.com": …}: the key is the value. Read as a string with no key over it; while it is,
 * and after it hit, paths through it say "[key]" (never print it). Out of line: rare, and the
 * walk keeps its registers. */
static __attribute__((noinline, cold)) void json_key_value(scan_t *s, frame_t *top, const char *body, uint32_t ks,
                                                           uint32_t kl, bool esc)
{
    val_t kv;
    make_val(s, &kv, ks, body + ks, kl, esc);
    top->key_value = 1;
    s->json_string = true;
    size_t nemit = s->nemit;
    scan_text(s, &kv, 0);
    s->json_string = false;
    top->key_value = s->nemit != nemit;
}

static const char *scan_json(scan_t *s, const char *body, size_t n)
{
    qmemo_t qmemo[QMEMO];
    s->qmemo = qmemo;
    s->qm_valid = 0;
    /* frames[-1] is a root that is never pushed: an object with no key rule, no index to count
     * and nothing to inherit, so that the walk needs no test for "no frame" (a top-level scalar). */
    frame_t fall[MAX_FRAMES + 1], *frames = fall + 1;
    memset(&fall[0], 0, sizeof fall[0]);
    fall[0].is_obj = 1;
    fall[0].custom = -1;
    fall[0].key_len = (uint32_t)-1;
    pending_t pending[MAX_PENDING];
    s->frames = frames;
    s->nframes = 0;
    s->pc_len = -1;
    uint32_t pushes = 0; /* a frame's serial */
    s->pending = pending;
    s->npending = 0;
    /* Live across the walk: s, the input (p, n, pos), the innermost frame (top; the depth is
     * s->nframes, read where it is needed) and the flags of the key over the next value (kflags:
     * top->kflags, set by a key, unchanged by an array's push, reloaded by a pop); no more than
     * the registers a call leaves alone. */
    const unsigned char *p = (const unsigned char *)body;
    frame_t *top = &fall[0];
    uint32_t kflags = 0;
    size_t pos = 0;
    unsigned c;
    int rc = 0;

/* The string opening at p[pos] (a value or a key): its end and whether it has escapes, or the
 * tokenizer's error out of the walk. */
#define SCAN_STRING_OR_OUT(end, esc)                                  \
    do {                                                              \
        int r_ = bgj_scan_string(p, pos + 1, n, &(end), &(esc));      \
        if (r_ < 0) {                                                 \
            rc = r_;                                                  \
            goto out;                                                 \
        }                                                             \
    } while (0)

value:
    BGJ_NEXT_BYTE_OR(goto truncated);
value_c:
    if (c == '"') { /* the most common values, strings and numbers, first */
        size_t end;
        bool esc;
        SCAN_STRING_OR_OUT(end, esc);
        json_scalar(s, top, body, n, (uint32_t)(pos + 1), (uint32_t)(end - pos - 1), esc, true, 0, kflags);
        pos = end + 1;
        goto value_done;
    }
    if (c - '0' < 10u || c == '-') {
        size_t end;
        unsigned shape;
        int r = bgj_scan_number_shape(p, pos, n, &end, &shape);
        if (r < 0) {
            rc = r;
            goto out;
        }
        json_scalar(s, top, body, n, (uint32_t)pos, (uint32_t)(end - pos), false, false, shape, kflags);
        pos = end;
        goto value_done;
    }
    if (c == '{' || c == '[')
        goto push;
    {
        int r;
        switch (c) {
        case 't': r = bgj_literal_at(p, pos, n, "true", 4), pos += 4; break;
        case 'f': r = bgj_literal_at(p, pos, n, "false", 5), pos += 5; break;
        case 'n': r = bgj_literal_at(p, pos, n, "null", 4), pos += 4; break;
        default: r = BG_JSON_EINVAL; break;
        }
        if (r < 0) {
            rc = r;
            goto out;
        }
    }
value_done:
    /* Counted in objects too, where it is never read: no test of the frame's kind. */
    top->index++;
    if (top == fall)
        goto done;
    BGJ_NEXT_BYTE_OR(goto truncated);
    if (c == ',') {
        pos++;
        if (top->is_obj)
            goto key;
        goto value;
    }
    if (c == (top->is_obj ? '}' : ']'))
        goto close;
    rc = BG_JSON_EINVAL;
    goto out;

push: {
    if (s->nframes >= BG_JSON_MAX_DEPTH) {
        rc = BG_JSON_EDEPTH;
        goto out;
    }
    frame_t *f = top + 1;
    bool obj = c == '{';
    f->is_obj = obj;
    f->product = 0;
    f->kflags = !obj ? top->kflags : 0; /* an array's values keep the key over it (kflags stays) */
    f->custom = !obj ? top->custom : -1;
    f->inherit = top->inherit | (top->kflags & K_AI);
    f->key_off = 0;
    f->key_len = (uint32_t)-1;
    f->key_value = 0;
    f->index = 0;
    f->serial = ++pushes;
    s->nframes++;
    top = f;
    pos++;
    if (obj)
        goto obj_first;
    goto arr_first;
}

close:
    if (top->is_obj && s->npending)
        flush_pending(s, s->nframes, top->product);
    pos++;
    s->nframes--;
    top--;
    kflags = top->kflags;
    goto value_done; /* a closed container is its parent's value */

obj_first:
    BGJ_NEXT_BYTE_OR(goto truncated);
    if (c == '}')
        goto close;
    goto key_c;
key:
    BGJ_NEXT_BYTE_OR(goto truncated);
key_c:
    if (c != '"') {
        rc = BG_JSON_EINVAL;
        goto out;
    }
    {
        size_t end;
        bool esc;
        SCAN_STRING_OR_OUT(end, esc);
        uint32_t ks = (uint32_t)(pos + 1), kl = (uint32_t)(end - pos - 1);
        kinfo_t ki;
        if (esc) {
            char kb[128];
            size_t kbl = kl < sizeof kb ? kl : sizeof kb;
            kbl = bg_json_unescape(body + ks, kbl, kb, NULL);
            ki = key_info_raw(s, kb, kbl);
        } else {
            ki = key_info_raw(s, body + ks, kl);
        }
        top->key_off = ks;
        top->key_len = kl;
        top->key_value = 0;
        if (__builtin_expect((ki.flags & K_NAMEVAL) != 0, 0) || (esc && kl > 128 && name_may_hold_value(body + ks, kl))) {
            ki.flags &= ~(uint32_t)K_NAMEVAL;
            json_key_value(s, top, body, ks, kl, esc);
        }
        top->kflags = kflags = ki.flags;
        top->custom = ki.custom;
        if (ki.flags & (K_PRODUCT | K_ID)) {
            if (ki.flags & K_PRODUCT)
                top->product = 1;
            else if (top[-1].kflags & K_DEVOBJ) /* top[-1]: the frame below (frames[-1] for the first) */
                top->kflags = kflags = ki.flags | K_DEVICE;
        }
        pos = end + 1;
    }
    /* Compact JSON: the colon follows at once. */
    if (pos < n && p[pos] == ':') {
        pos++;
        goto value;
    }
    BGJ_NEXT_BYTE_OR(goto truncated);
    if (c != ':') {
        rc = BG_JSON_EINVAL;
        goto out;
    }
    pos++;
    goto value;

arr_first:
    BGJ_NEXT_BYTE_OR(goto truncated);
    if (c == ']')
        goto close;
    goto value_c;

done:
    while (pos < n && p[pos] <= ' ' && BGJ_IS_WS(p[pos]))
        pos++;
    if (pos < n)
        rc = BG_JSON_EINVAL;
    goto out;
truncated:
    rc = BG_JSON_ETRUNC;
out:
#undef SCAN_STRING_OR_OUT
    s->json_string = false;
    const char *reason = NULL;
    if (rc == BG_JSON_EDEPTH)
        reason = "json_too_deep";
    else if (rc < 0)
        reason = "malformed_json";
    /* Names still pending in unclosed objects are reported: fail towards personal data. */
    while (s->npending) {
        pending_t *pd = &s->pending[--s->npending];
        s->json_string = true;
        emit_path(s, BG_DET_PERSON_NAME, pd->off, pd->len, pd->encoded, pd->path);
    }
    s->json_string = false;
    s->frames = NULL;
    s->nframes = 0;
    s->pending = NULL;
    return reason;
}

/* ------------------------------------------------------------------------------------------ */
/* Target, form, multipart                                                                    */

static inline int hexv(unsigned c)
{
    if (isd(c))
        return (int)(c - '0');
    c |= 0x20;
    return c - 'a' < 6u ? (int)(c - 'a' + 10) : -1;
}

/* Percent-decode r[0..n) ('+' as space when plus) into out; map as in val_t. */
static size_t pct_decode(const char *r, size_t n, bool plus, char *out, uint32_t *map)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (map)
            map[o] = (uint32_t)i;
        unsigned c = (unsigned char)r[i];
        int h, l;
        if (c == '%' && i + 2 < n && (h = hexv((unsigned char)r[i + 1])) >= 0 &&
            (l = hexv((unsigned char)r[i + 2])) >= 0) {
            out[o++] = (char)(h << 4 | l);
            i += 3;
        } else {
            out[o++] = plus && c == '+' ? ' ' : (char)c;
            i++;
        }
    }
    if (map)
        map[o] = (uint32_t)n;
    return o;
}

static void make_pct_val(scan_t *s, val_t *v, size_t rawoff, const char *raw, size_t n, bool plus)
{
    v->rawoff = rawoff;
    v->plus = plus;
    v->not_quick = false;
    if (!memchr(raw, '%', n) && !(plus && memchr(raw, '+', n))) {
        v->t = (const unsigned char *)raw;
        v->n = n;
        v->map = NULL;
        return;
    }
    scratch(s, n);
    v->n = pct_decode(raw, n, plus, s->dec, s->map);
    v->t = (const unsigned char *)s->dec;
    v->map = s->map;
}

/* name=value&name=value at base[off, off+len) (query string or form body). */
/* The name of the parameter at p (ending at kend), decoded into key[128] when it has an escape;
 * returns the name's bytes (p itself when it has none: most names) and their count in *kl. */
static const char *param_name(const char *p, const char *kend, char key[128], size_t *kl)
{
    size_t l = (size_t)(kend - p) < 128 ? (size_t)(kend - p) : 128;
    for (size_t i = 0; i < l; i++)
        if (p[i] == '%' || p[i] == '+') {
            *kl = pct_decode(p, l, true, key, NULL);
            return key;
        }
    *kl = l;
    return p;
}

/* A bare name's value (name=, nom=, nombre= ...) held back while its parameter list is read:
 * whether it is a person's depends on its siblings (scan_params). */
typedef struct {
    size_t off, len; /* the raw span in s->base */
    bool enc;
    uint8_t kl;
    char key[63];    /* the parameter's name, for the finding's path */
} held_name_t;
#define HELD_NAMES 4

/* v is the value of a bare name key (scan_params). If it is name-shaped (scan_value's rule for
 * it: trimmed, person_ok strict), hold its span (emit_v's offsets and encoding) and key in
 * held[*nheld], or past HELD_NAMES report it at once (and count it into *nemit0: it is no
 * "something else" in the list); true either way. False: not a name, scan it as any value. */
static __attribute__((noinline)) bool hold_name(scan_t *s, const val_t *v, const char *key, size_t kl,
                                                held_name_t *held, unsigned *nheld, size_t *nemit0)
{
    size_t a = 0, b = v->n;
    while (a < b && (v->t[a] == ' ' || v->t[a] == '\t'))
        a++;
    while (b > a && (v->t[b - 1] == ' ' || v->t[b - 1] == '\t'))
        b--;
    if (a == b || !person_ok(v->t + a, b - a, true))
        return false;
    if (*nheld == HELD_NAMES) {
        emit_v(s, BG_DET_PERSON_NAME, v, a, b);
        (*nemit0)++;
        return true;
    }
    held_name_t *h = &held[(*nheld)++];
    size_t ra = vmap(v, a), rb = vmap(v, b);
    h->off = v->rawoff + ra;
    h->len = rb - ra;
    h->enc = rb - ra != b - a || (v->plus && memchr(s->base + h->off, '+', rb - ra));
    h->kl = (uint8_t)(kl < sizeof h->key ? kl : sizeof h->key);
    memcpy(h->key, key, h->kl);
    return true;
}

/* The end of a parameter list that held bare names: they are a product's when the list has a
 * product key (sku, price, qty ...: product) and nothing else in it was personal (no emit since
 * nemit0); else each is reported, under its key. */
static __attribute__((noinline, cold)) void release_held(scan_t *s, const held_name_t *held, unsigned nheld,
                                                         size_t nemit0, bool product)
{
    if (product && s->nemit == nemit0)
        return;
    for (unsigned i = 0; i < nheld; i++) {
        s->path = held[i].key;
        s->path_len = held[i].kl;
        emit_path(s, BG_DET_PERSON_NAME, held[i].off, held[i].len, held[i].enc, NULL);
    }
}

static void scan_params(scan_t *s, size_t off, size_t len)
{
    const char *p = s->base + off, *end = p + len;
    held_name_t held[HELD_NAMES]; /* bare names, until the list is read (hold_name) */
    unsigned nheld = 0;
    size_t nemit0 = s->nemit;
    bool product = false; /* the list has a product key: what release_held needs of it */
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *kend = eq ? eq : pe;
        char key[128];
        size_t kl;
        const char *kp = param_name(p, kend, key, &kl);
        s->path = kp;
        s->path_len = kl;
        kinfo_t ki = key_info_raw(s, kp, kl);
        product |= (ki.flags & K_PRODUCT) != 0;
        bool nameval = ki.flags & K_NAMEVAL;
        ki.flags &= ~(uint32_t)K_NAMEVAL;
        if (nameval || ((size_t)(kend - p) > sizeof key && name_may_hold_value(p, (size_t)(kend - p)))) {
            /* `?ann@example.com`, `203.0.113.7=1`: the name is the value. Its findings, and once
             * it hit those of its value, name no parameter (that would print the value). */
            val_t nv;
            size_t nemit = s->nemit;
            s->path = "[name]";
            s->path_len = 6;
            make_pct_val(s, &nv, (size_t)(p - s->base), p, (size_t)(kend - p), true);
            scan_text(s, &nv, 0);
            if (s->nemit == nemit)
                s->path = kp, s->path_len = kl;
        }
        if (eq) {
            val_t v;
            make_pct_val(s, &v, (size_t)(eq + 1 - s->base), eq + 1, (size_t)(pe - eq - 1), true);
            bool ai = s->ai_route && (ki.flags & K_AI);
            /* A bare name (its key has that rule alone) is held back: next to sku/price, with
             * nothing else personal in the list, it is a product's ("nom=Chaise+Pliante&sku=...");
             * beside an e-mail, phone, IBAN ... a person's order ("name=...&email=...&sku=..."). */
            if (!(__builtin_expect(ki.flags == K_NAME_BARE, 0) && !ai &&
                  hold_name(s, &v, kp, kl, held, &nheld, &nemit0)))
                scan_value(s, ki, &v, ai, true);
            scan_if_b64_json(s, &v);
        }
        p = pe + 1;
    }
    if (__builtin_expect(nheld != 0, 0))
        release_held(s, held, nheld, nemit0, product);
    s->path = NULL;
    s->path_len = 0;
}

static void scan_target(scan_t *s, const char *target, size_t n)
{
    s->base = target;
    s->where = BG_WHERE_PATH;
    s->header = 0;
    s->recent_from = s->out->nfindings;
    const char *q = memchr(target, '?', n);
    const char *hash = memchr(target, '#', n);
    size_t plen = q ? (size_t)(q - target) : hash ? (size_t)(hash - target) : n;
    /* Absolute-form targets: skip scheme and authority. */
    size_t i = 0;
    /* The first "://" (memmem's set-up costs more than a ':' scan of an origin-form path). */
    const char *ss = NULL, *pend = target + plen;
    for (const char *c = memchr(target, ':', plen); c; c = memchr(c + 1, ':', (size_t)(pend - c - 1)))
        if (pend - c >= 3 && c[1] == '/' && c[2] == '/') {
            ss = c;
            break;
        }
    if (ss)
        i = (size_t)(ss - target) + 3;
    s->path = "path";
    s->path_len = 4;
    while (i < plen) {
        while (i < plen && target[i] == '/')
            i++;
        size_t st = i;
        while (i < plen && target[i] != '/')
            i++;
        if (i > st) {
            val_t v;
            make_pct_val(s, &v, st, target + st, i - st, false);
            scan_text(s, &v, 0);
            scan_if_b64_json(s, &v);
        }
    }
    if (q) {
        size_t qs = (size_t)(q - target) + 1;
        size_t qe = hash && hash > q ? (size_t)(hash - target) : n;
        s->where = BG_WHERE_QUERY;
        s->recent_from = s->out->nfindings;
        scan_params(s, qs, qe - qs);
    }
    s->path = NULL;
    s->path_len = 0;
}

/* A parameter of a header value: `name=value` or `name="value"` after a ';'. */
static bool header_param(const char *v, size_t n, const char *name, const char **out, size_t *outlen)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (v[i] != ';')
            continue;
        size_t j = i + 1;
        while (j < n && (v[j] == ' ' || v[j] == '\t'))
            j++;
        if (j + nl < n && bg_span_ieq(v + j, nl, name) && v[j + nl] == '=') {
            j += nl + 1;
            if (j < n && v[j] == '"') {
                size_t st = ++j;
                while (j < n && v[j] != '"')
                    j++;
                if (j >= n)
                    return false;
                *out = v + st;
                *outlen = j - st;
                return true;
            }
            size_t st = j;
            while (j < n && v[j] != ';' && v[j] != ' ' && v[j] != '\t')
                j++;
            *out = v + st;
            *outlen = j - st;
            return true;
        }
    }
    return false;
}

static const char *memfind(const char *h, size_t hn, const char *nd, size_t nn)
{
    return nn <= hn ? memmem(h, hn, nd, nn) : NULL;
}

static bg_body_kind_t body_kind(const char *ct, size_t ctl, const char *body, size_t n);

static const char *scan_multipart(scan_t *s, const char *body, size_t n, const char *ct, size_t ctlen)
{
    const char *bnd;
    size_t bl;
    if (!header_param(ct, ctlen, "boundary", &bnd, &bl) || bl == 0 || bl > 70)
        return "malformed_multipart";
    char delim[80];
    delim[0] = '\r';
    delim[1] = '\n';
    delim[2] = delim[3] = '-';
    memcpy(delim + 4, bnd, bl);
    size_t dl = bl + 4;
    /* The first delimiter may open the body (no CRLF before it). */
    const char *p;
    if (n >= dl - 2 && memcmp(body, delim + 2, dl - 2) == 0)
        p = body + dl - 2;
    else {
        p = memfind(body, n, delim, dl);
        if (!p)
            return "malformed_multipart";
        p += dl;
    }
    const char *end = body + n;
    const char *reason = NULL;
    held_name_t held[HELD_NAMES]; /* bare names, until every part is read (hold_name) */
    unsigned nheld = 0;
    size_t nemit0 = s->nemit;
    bool product = false;
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            goto out; /* close delimiter */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            goto malformed;
        p += 2;
        const char *hend = memfind(p, (size_t)(end - p), "\r\n\r\n", 4);
        const char *content;
        if (hend)
            content = hend + 4;
        else if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
            content = p + 2, hend = p;
        else
            goto malformed;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            hend = p;
            content = p + 2;
        }
        /* Content-Disposition: form-data; name="x"; filename="y" */
        const char *name = NULL, *fname = NULL;
        size_t namel = 0, fnamel = 0;
        bool file = false, text = true; /* text: the part's type, when it has one, is one a reader knows */
        for (const char *h = p; h < hend;) {
            const char *le = memfind(h, (size_t)(hend - h), "\r\n", 2);
            if (!le)
                le = hend;
            const char *colon = memchr(h, ':', (size_t)(le - h));
            if (colon && bg_span_ieq(h, (size_t)(colon - h), "content-disposition")) {
                const char *hv = colon + 1;
                size_t hvl = (size_t)(le - hv);
                header_param(hv, hvl, "name", &name, &namel);
                if (header_param(hv, hvl, "filename", &fname, &fnamel) ||
                    header_param(hv, hvl, "filename*", &fname, &fnamel))
                    file = true;
            } else if (colon && bg_span_ieq(h, (size_t)(colon - h), "content-type")) {
                const char *tv = colon + 1;
                size_t tl = (size_t)(le - tv);
                while (tl && (*tv == ' ' || *tv == '\t'))
                    tv++, tl--;
                bg_body_kind_t k = body_kind(tv, tl, content, 0);
                text = k == BG_BODY_JSON || k == BG_BODY_TEXT || k == BG_BODY_FORM;
            }
            h = le + 2;
        }
        const char *next = memfind(content, (size_t)(end - content), delim, dl);
        if (!next)
            goto malformed;
        char key[64];
        size_t kl = name ? (namel < sizeof key ? namel : sizeof key) : 0;
        if (kl)
            memcpy(key, name, kl);
        s->path = key;
        s->path_len = kl;
        s->recent_from = s->out->nfindings;
        size_t coff = (size_t)(content - body), clen = (size_t)(next - content);
        if (file) {
            if (clen) {
                emit_path(s, BG_DET_FILE_UPLOAD, coff, clen, false, NULL);
                /* And what is in the file: an uploaded customer list is identifiers, not only
                 * content. Read as text, as a body of its type would be (binary types with the
                 * binary caution); what is found inside lies under the file's finding, so it
                 * adds its categories to that finding's covers (one finding per byte, for
                 * sealing) and to the exchange's categories. */
                bool was = s->binary;
                s->binary = !text;
                val_t v = {coff, (const unsigned char *)content, clen, NULL, false, false};
                scan_text(s, &v, 0);
                s->binary = was;
            } else if (s->c->enabled[BG_DET_FILE_UPLOAD]) {
                s->out->categories |= 1u << BG_CAT_CONTENT;
            }
        } else {
            kinfo_t ki = key_info_s(s, key, kl);
            product |= (ki.flags & K_PRODUCT) != 0;
            bool ai = s->ai_route && (ki.flags & K_AI);
            val_t v = {coff, (const unsigned char *)content, clen, NULL, false, false};
            /* A bare name is held as in a form (scan_params): a product's beside its sku. */
            if (!(ki.flags == K_NAME_BARE && !ai && hold_name(s, &v, key, kl, held, &nheld, &nemit0)))
                scan_value(s, ki, &v, ai, true);
        }
        s->path = NULL;
        s->path_len = 0;
        p = next + dl;
    }
malformed:
    reason = "malformed_multipart";
    product = false; /* the list was not read to its end: its names are reported */
out:
    if (nheld)
        release_held(s, held, nheld, nemit0, product);
    s->path = NULL;
    s->path_len = 0;
    return reason;
}

/* ------------------------------------------------------------------------------------------ */
/* Headers                                                                                    */

static bool long_random(const char *v, size_t n)
{
    if (n < 20)
        return false;
    unsigned kinds = 0, letters = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)v[i];
        if (isd(c))
            kinds |= 1;
        else if (cls[c] & CU)
            kinds |= 2, letters++;
        else if (cls[c] & CL)
            kinds |= 4, letters++;
        else if (c == '-' || c == '_' || c == '.' || c == '%' || c == '+' || c == '/' || c == '=' || c == '~')
            kinds |= 8;
        else
            return false;
    }
    /* A token's letters are a good share of it (hex: 6 of 16 symbols); a dotted list of numbers
     * under a short tag is an analytics id ("GA1.2.292694077.1609636969", "fb.1.1700000000000.42"). */
    return (kinds & 1) && (kinds & 6) && letters * 8 >= n;
}

/* What a cookie's name says of its value: 1 a session (sess, sid, auth, token ...), -1 an
 * anti-forgery token (csrftoken, XSRF-TOKEN: it authenticates nobody, as csrf keys in bodies),
 * 0 nothing. */
static int session_name(const char *k, size_t n)
{
    char nk[KEY_MAX + 1];
    size_t l = key_norm(k, n, nk);
    static const char *const csrf[] = {"csrf", "xsrf"};
    if (kw_in((const unsigned char *)nk, 0, l, csrf, 2, false))
        return -1;
    static const char *const sub[] = {"sess", "sid", "auth", "token", "jwt", "login", "remember", "sso", "identity"};
    return kw_in((const unsigned char *)nk, 0, l, sub, sizeof sub / sizeof sub[0], false);
}

static void scan_cookie(scan_t *s, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == ';'))
            i++;
        size_t ns = i;
        while (i < n && v[i] != '=' && v[i] != ';')
            i++;
        size_t ne = i;
        if (i >= n || v[i] != '=') {
            continue;
        }
        i++;
        size_t vs = i;
        while (i < n && v[i] != ';')
            i++;
        size_t ve = i;
        while (ve > vs && v[ve - 1] == ' ')
            ve--;
        if (ve - vs >= 2 && v[vs] == '"' && v[ve - 1] == '"')
            vs++, ve--;
        if (ve == vs)
            continue;
        val_t val = {vs, (const unsigned char *)v + vs, ve - vs, NULL, false, false};
        int sn = ve - vs >= 8 ? session_name(v + ns, ne - ns) : 0; /* long_random needs 20 */
        if (sn > 0 || (sn == 0 && long_random(v + vs, ve - vs))) {
            emit_path(s, BG_DET_SESSION_COOKIE, vs, ve - vs, false, NULL);
            scan_if_b64_json(s, &val); /* a session kept in the cookie: what it holds, in covers */
            continue;
        }
        kinfo_t ki = key_info_s(s, v + ns, ne - ns);
        scan_value(s, ki, &val, false, false);
        scan_if_b64_json(s, &val);
    }
}

/* Does p start with the lowercase literal lit[0..l) (ASCII, case-insensitive)? p has l bytes. */
/* p[0, n) equals lit, a lowercase ASCII literal of n >= 4 bytes, ignoring ASCII case: eight (or
 * four) bytes a step, the last step overlapping, where a byte may differ from lit's only by 0x20
 * and only where lit has a letter. bg_span_ieq's answer without its byte loop (~15 Ir a byte). */
static inline bool lit_ieq(const char *p, const char *lit, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, hi = ones * 0x80;
    if (n < 8) {
        uint32_t x0, x1, y0, y1;
        memcpy(&x0, p, 4);
        memcpy(&x1, p + n - 4, 4);
        memcpy(&y0, lit, 4);
        memcpy(&y1, lit + n - 4, 4);
        uint64_t x = x0 | (uint64_t)x1 << 32, y = y0 | (uint64_t)y1 << 32;
        uint64_t letter = ((y | hi) - ones * 'a') & ~((y | hi) - ones * ('z' + 1)) & hi;
        return ((x ^ y) & ~(letter >> 2)) == 0;
    }
    for (size_t i = 0;; i += 8) {
        if (i + 8 > n)
            i = n - 8;
        uint64_t x, y;
        memcpy(&x, p + i, 8);
        memcpy(&y, lit + i, 8);
        if (x != y) {
            /* lit's bytes in 'a'..'z' (each is ASCII, so no byte borrows from the next). */
            uint64_t letter = ((y | hi) - ones * 'a') & ~((y | hi) - ones * ('z' + 1)) & hi;
            if ((x ^ y) & ~(letter >> 2))
                return false;
        }
        if (i + 8 >= n)
            return true;
    }
}

static void scan_header(scan_t *s, const bg_header_t *h, uint16_t idx)
{
    const char *v = h->value;
    size_t n = h->value_len;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0)
        return;
    /* Prefix families that carry nothing personal (on the first letter first: most names start
     * with none of theirs). */
    unsigned c0 = h->name_len ? lower((unsigned char)h->name[0]) : 0;
    if ((c0 == 'a' && h->name_len >= 6 && lit_ieq(h->name, "accept", 6)) ||
        (c0 == 's' && h->name_len >= 10 && lit_ieq(h->name, "sec-fetch-", 10)) ||
        (c0 == 's' && h->name_len >= 7 && lit_ieq(h->name, "sec-ch-", 7)) ||
        (c0 == 'x' && h->name_len >= 5 && lit_ieq(h->name, "x-b3-", 5)))
        return;
    kinfo_t ki = key_info_s(s, h->name, h->name_len);
    /* Header-specific rules; a header name like "X-Device-Id" also gets the key rules. The
     * normalised name is only needed when the name has no header rule and starts with 'x' (its
     * first letter or digit). */
    if (!(ki.flags & (H_SKIP | H_UA | H_CLIENTIP | H_AUTH | H_COOKIE | H_APIKEY | H_SESSION | H_URL))) {
        char norm[KEY_MAX + 1];
        size_t nl = 0;
        size_t fx = 0;
        while (fx < h->name_len && !((unsigned)(lower((unsigned char)h->name[fx]) - 'a') < 26u ||
                                     (unsigned)((unsigned char)h->name[fx] - '0') < 10u))
            fx++;
        if (fx < h->name_len && lower((unsigned char)h->name[fx]) == 'x')
            nl = key_norm(h->name, h->name_len, norm);
        if (nl > 1 && norm[0] == 'x') {
            kinfo_t k2 = key_info_s(s, norm + 1, nl - 1);
            ki.flags |= k2.flags & ~(H_SKIP | H_UA | H_CLIENTIP | H_AUTH | H_COOKIE | H_APIKEY | H_SESSION | H_URL);
            if (ki.custom < 0)
                ki.custom = k2.custom;
        }
    }
    s->base = v;
    s->where = BG_WHERE_HEADER;
    s->header = idx;
    s->path = h->name;
    s->path_len = h->name_len;
    s->recent_from = s->out->nfindings;
    uint32_t f = ki.flags;
    if (f & H_SKIP)
        return;
    if (f & H_UA) {
        emit_path(s, BG_DET_USER_AGENT, 0, n, false, NULL);
        return;
    }
    if (f & H_CLIENTIP) {
        val_t val = {0, (const unsigned char *)v, n, NULL, false, false};
        scan_text(s, &val, F_CLIENTIP);
        return;
    }
    if (f & H_AUTH) {
        size_t i = 0;
        while (i < n && v[i] != ' ')
            i++;
        size_t st = i < n ? i : 0;
        while (st < n && v[st] == ' ')
            st++;
        if (st < n) {
            const unsigned char *t = (const unsigned char *)v;
            emit_path(s, jwt_at(t, n, st) == n ? BG_DET_JWT : BG_DET_BEARER_TOKEN, st, n - st, false, NULL);
        }
        return;
    }
    if (f & H_COOKIE) {
        scan_cookie(s, v, n);
        return;
    }
    if (f & (H_APIKEY | H_SESSION)) {
        emit_path(s, (f & H_SESSION) ? BG_DET_SESSION_COOKIE : BG_DET_API_KEY, 0, n, false, NULL);
        return;
    }
    val_t val;
    if (f & H_URL)
        make_pct_val(s, &val, 0, v, n, true);
    else
        val = (val_t){0, (const unsigned char *)v, n, NULL, false, false};
    scan_value(s, ki, &val, false, false);
    scan_if_b64_json(s, &val);
}

/* ------------------------------------------------------------------------------------------ */
/* Bodies                                                                                     */

/* The first Content-Type and the first Content-Encoding header, in one pass (lengths are
 * compared before bytes: most names differ in length already). */
static void find_content_headers(const bg_classify_input_t *in, const bg_header_t **ct, const bg_header_t **ce)
{
    *ct = *ce = NULL;
    for (size_t i = 0; i < in->nheaders; i++) {
        const bg_header_t *h = &in->headers[i];
        if (h->name_len == 12 && !*ct && lit_ieq(h->name, "content-type", 12))
            *ct = h;
        else if (h->name_len == 16 && !*ce && lit_ieq(h->name, "content-encoding", 16))
            *ce = h;
    }
}

static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t'))
        (*p)++, (*n)--;
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

/* Inflate body into out->inflated. Returns NULL or an unscannable reason. */
static const char *inflate_body(const char *body, size_t n, bool gzip, uint64_t limit, bg_buf_t *dst)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* gzip: gzip framing only; deflate: zlib framing, or raw deflate as some senders do. */
    int wbits = gzip ? 15 + 16 : 15;
    if (!gzip && n >= 1 && (((unsigned char)body[0] & 0x0f) != 8 ||
                            (n >= 2 && (((unsigned char)body[0] << 8) | (unsigned char)body[1]) % 31 != 0)))
        wbits = -15;
    if (inflateInit2(&z, wbits) != Z_OK)
        return "malformed_gzip";
    z.next_in = (Bytef *)(uintptr_t)body;
    z.avail_in = (uInt)(n > UINT32_MAX ? UINT32_MAX : n);
    const char *reason = NULL;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (dst->len >= limit) {
            reason = "inflate_limit";
            break;
        }
        size_t room = 64 * 1024;
        if (room > limit - dst->len + 1)
            room = (size_t)(limit - dst->len + 1);
        bg_buf_reserve(dst, room);
        z.next_out = (Bytef *)dst->data + dst->len;
        z.avail_out = (uInt)room;
        rc = inflate(&z, Z_NO_FLUSH);
        dst->len += room - z.avail_out;
        dst->data[dst->len] = 0;
        if (dst->len > limit) {
            reason = "inflate_limit";
            break;
        }
        if (rc == Z_STREAM_END && z.avail_in > 0) {
            /* Bytes after the end: further gzip members (decoders concatenate them, so they are
             * scanned too); after a deflate stream they are garbage that must not pass unseen. */
            if (!gzip) {
                reason = "malformed_gzip";
                break;
            }
            if (inflateReset(&z) != Z_OK) {
                reason = "malformed_gzip";
                break;
            }
            rc = Z_OK;
            continue;
        }
        if (rc == Z_STREAM_END)
            break;
        if (rc == Z_BUF_ERROR && z.avail_in == 0) {
            reason = "truncated_gzip";
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            reason = "malformed_gzip";
            break;
        }
        if (z.avail_in == 0 && z.avail_out != 0) {
            reason = "truncated_gzip";
            break;
        }
    }
    inflateEnd(&z);
    return reason;
}

/* Whether a body's first byte after JSON whitespace opens an object or an array: how a body with
 * no type, or a type without a reader, is taken for JSON. */
static bool starts_like_json(const char *body, size_t n)
{
    size_t i = 0;
    while (i < n && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    return i < n && (body[i] == '{' || body[i] == '[');
}

static bg_body_kind_t body_kind(const char *ct, size_t ctl, const char *body, size_t n)
{
    if (ctl == 0) {
        if (starts_like_json(body, n))
            return BG_BODY_JSON;
        size_t look = n < 512 ? n : 512;
        return memchr(body, 0, look) ? BG_BODY_OTHER : BG_BODY_TEXT;
    }
    /* The common case first, as the rules below would read it: "application/json", then only
     * blanks up to the end or a parameter. */
    if (ctl >= 16 && lit_ieq(ct, "application/json", 16)) {
        size_t i = 16;
        while (i < ctl && (ct[i] == ' ' || ct[i] == '\t'))
            i++;
        if (i == ctl || ct[i] == ';')
            return BG_BODY_JSON;
    }
    const char *semi = memchr(ct, ';', ctl);
    size_t ml = semi ? (size_t)(semi - ct) : ctl;
    trim(&ct, &ml);
    const char *slash = memchr(ct, '/', ml);
    if (!slash)
        return BG_BODY_OTHER;
    const char *sub = slash + 1;
    size_t tl = (size_t)(slash - ct), sl = ml - tl - 1;
    if (bg_span_ieq(ct, ml, "application/x-www-form-urlencoded"))
        return BG_BODY_FORM;
    if (bg_span_ieq(ct, ml, "multipart/form-data"))
        return BG_BODY_MULTIPART;
    if (bg_span_ieq(sub, sl, "json") || (sl > 5 && bg_span_ieq(sub + sl - 5, 5, "+json")))
        return (bg_span_ieq(ct, tl, "application") || bg_span_ieq(ct, tl, "text")) ? BG_BODY_JSON : BG_BODY_OTHER;
    if (bg_span_ieq(ct, tl, "text"))
        return BG_BODY_TEXT;
    if (bg_span_ieq(ct, tl, "application") &&
        (bg_span_ieq(sub, sl, "xml") || (sl > 4 && bg_span_ieq(sub + sl - 4, 4, "+xml")) ||
         bg_span_ieq(sub, sl, "graphql") || bg_span_ieq(sub, sl, "x-ndjson") || bg_span_ieq(sub, sl, "jsonl") ||
         bg_span_ieq(sub, sl, "javascript") || bg_span_ieq(sub, sl, "csv") || bg_span_ieq(sub, sl, "yaml") ||
         bg_span_ieq(sub, sl, "x-yaml")))
        return BG_BODY_TEXT;
    return BG_BODY_OTHER;
}

int bg_classify(const bg_classifier_t *c, const bg_classify_input_t *in, bg_classification_t *out)
{
    return classify(c, in, out, 0);
}

/* bg_classify, depth base64-JSON values deep (scan_b64_json). */
static int classify(const bg_classifier_t *c, const bg_classify_input_t *in, bg_classification_t *out,
                    unsigned depth)
{
    if (!c || !in || !out || !out->counts || !out->findings)
        return -1;
    memset(out->counts, 0, c->ndet * sizeof *out->counts);
    out->categories = 0;
    size_t stale = out->nfindings; /* a second call on out: what it does not overwrite goes at the end */
    out->nfindings = 0;
    out->findings_truncated = false;
    out->unscannable = false;
    out->unscannable_reason = NULL;
    out->body_kind = BG_BODY_NONE;
    out->body_inflated = false;
    if (out->inflated.data)
        bg_wipe(out->inflated.data, out->inflated.len);
    bg_buf_reset(&out->inflated);

    scan_t s;
    kcache_t kcache[KCACHE];
    rkcache_t rkcache[RKCACHE];
    memset(&s, 0, sizeof s);
    size_t espan[ESPAN_FIRST][2];
    s.espan = espan;
    s.espan_cap = ESPAN_FIRST;
    s.kcache = kcache;
    s.rkcache = rkcache;
    s.c = c;
    s.out = out;
    s.ai_route = in->ai_route;
    s.skip_loc = in->skip_locations;
    s.depth = depth;

    for (size_t i = 0; i < in->nheaders && i < UINT16_MAX; i++)
        scan_header(&s, &in->headers[i], (uint16_t)i);
    if (in->target && in->target_len)
        scan_target(&s, in->target, in->target_len);

    const char *ct = NULL, *ce = NULL;
    size_t ctl = 0, cel = 0;
    const bg_header_t *h, *hce;
    find_content_headers(in, &h, &hce);
    if (h) {
        ct = h->value;
        ctl = h->value_len;
        trim(&ct, &ctl);
    }
    h = hce;
    if (h) {
        ce = h->value;
        cel = h->value_len;
        trim(&ce, &cel);
    }
    const char *body = in->body;
    size_t blen = in->body ? in->body_len : 0;
    s.path = NULL;
    s.path_len = 0;
    const char *reason = NULL;
    s.where = BG_WHERE_BODY;
    s.header = 0;
    s.recent_from = out->nfindings;
    if (blen == 0 && !in->body_truncated)
        goto done;
    out->body_kind = body_kind(ct, ctl, body, blen);
    if (in->body_truncated) {
        reason = "body_too_large";
        goto done;
    }
    if (cel && !bg_span_ieq(ce, cel, "identity")) {
        bool gz = bg_span_ieq(ce, cel, "gzip") || bg_span_ieq(ce, cel, "x-gzip");
        bool df = bg_span_ieq(ce, cel, "deflate");
        if (!gz && !df) {
            reason = "unknown_encoding";
            goto done;
        }
        uint64_t limit = in->max_inflate ? in->max_inflate : 16u << 20;
        if (limit > UINT32_MAX)
            limit = UINT32_MAX;
        reason = inflate_body(body, blen, gz, limit, &out->inflated);
        if (reason)
            goto done;
        out->body_inflated = true;
        body = out->inflated.data ? out->inflated.data : "";
        blen = out->inflated.len;
        if (!ctl)
            out->body_kind = body_kind(ct, ctl, body, blen);
    }
    if (blen > UINT32_MAX) {
        reason = "body_too_large";
        goto done;
    }
    s.base = body;
    /* A declared type the classifier has no reader for (application/octet-stream, protobuf,
     * msgpack, images, PDF …) is still read: as JSON when it is JSON, otherwise as text. A label
     * must not carry personal data past the detectors, and binary formats hold their strings
     * verbatim (an e-mail in a protobuf message is an e-mail). body_kind stays OTHER, so the
     * encrypt action seals such a body whole. Validated detectors rarely fire on compressed or
     * random bytes (the unit test's noise case). */
    bool other = out->body_kind == BG_BODY_OTHER;
    s.binary = other;
    if (other) {
        if (starts_like_json(body, blen))
            goto json;
        val_t v = {0, (const unsigned char *)body, blen, NULL, false, false};
        scan_text(&s, &v, 0);
        goto done;
    }
    switch (out->body_kind) {
    case BG_BODY_JSON:
    json: {
        size_t before = out->nfindings;
        reason = scan_json(&s, body, blen);
        size_t nf_json = out->nfindings;
        if (reason && (ctl == 0 || other)) {
            /* Sniffed, not declared: read it as text rather than refuse it, dropping what the
             * JSON attempt found so that the text scan's spans do not overlap them. */
            reason = NULL;
            if (!other)
                out->body_kind = BG_BODY_TEXT;
            while (out->nfindings > before)
                out->counts[out->findings[--out->nfindings].detector]--;
            bg_wipe(&out->findings[before], (nf_json - before) * sizeof *out->findings);
            s.recent_from = out->nfindings;
            val_t v = {0, (const unsigned char *)body, blen, NULL, false, false};
            scan_text(&s, &v, 0);
        }
        break;
    }
    case BG_BODY_FORM:
        scan_params(&s, 0, blen);
        break;
    case BG_BODY_MULTIPART:
        reason = scan_multipart(&s, body, blen, ct, ctl);
        break;
    case BG_BODY_TEXT: {
        val_t v = {0, (const unsigned char *)body, blen, NULL, false, false};
        scan_text(&s, &v, 0);
        break;
    }
    default:
        break;
    }
done:
    if (!reason && s.too_deep)
        reason = "encoding_too_deep";
    if (stale > out->nfindings)
        bg_wipe(&out->findings[out->nfindings], (stale - out->nfindings) * sizeof *out->findings);
    if (reason) {
        out->unscannable = true;
        out->unscannable_reason = reason;
    }
    if (s.dec)
        bg_wipe(s.dec, s.cap);
    free(s.dec);
    free(s.map);
    if (s.espan_heap)
        free(s.espan);
    return 0;
}
