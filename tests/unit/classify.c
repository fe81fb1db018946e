/*
 * unit/classify.c — the classifier: each detector's validator and look-alikes, exact byte
 * offsets in headers, path, query and bodies (JSON, form, multipart, text, gzip), key rules
 * (product names, request ids, versions), overlap resolution, limits (zip bomb, depth, findings
 * cap, truncated bodies) and custom detectors. Single-threaded.
 */
#include "classify.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static bg_classifier_t *C;
static bg_classification_t R;
static bg_header_t H[16];
static size_t NH;

static void reset_headers(void) { NH = 0; }
static void add_header(const char *n, const char *v)
{
    H[NH++] = (bg_header_t){n, strlen(n), v, strlen(v)};
}

static void classify_full(const char *target, const char *body, size_t blen, bool ai)
{
    bg_classify_input_t in = {H, NH, target, target ? strlen(target) : 0, body, blen, false, ai, 0, false};
    CHECK_INT(bg_classify(C, &in, &R), 0);
}

static void body_as(const char *ct, const char *body)
{
    reset_headers();
    if (ct)
        add_header("Content-Type", ct);
    classify_full(NULL, body, strlen(body), false);
}

static int det(const char *name) { return bg_classifier_detector_find(C, name); }

/* The i-th finding of detector `name` (or NULL). */
static const bg_finding_t *nth(const char *name, int i)
{
    int d = det(name);
    for (size_t k = 0; k < R.nfindings; k++)
        if (R.findings[k].detector == d && i-- == 0)
            return &R.findings[k];
    return NULL;
}

static unsigned count(const char *name) { return R.counts[det(name)]; }

/* Assert a finding of `name` covering exactly `want` in buf. */
#define CHECK_FOUND(name, buf, want)                                                                 \
    do {                                                                                             \
        const bg_finding_t *_f = nth(name, 0);                                                       \
        if (!_f)                                                                                     \
            bg_test_fail(__FILE__, __LINE__, "no %s finding (want \"%s\")", name, want);             \
        else                                                                                         \
            CHECK_SPAN((buf) + _f->offset, _f->length, want);                                        \
    } while (0)

static void text(const char *s) { body_as("text/plain", s); }

/* ---------------------------------------------------------------- validators */

static void test_luhn_and_cards(void)
{
    CHECK(bg_detect_luhn("79927398713", 11));
    CHECK(!bg_detect_luhn("79927398710", 11));
    CHECK(bg_detect_card_valid("4111111111111111", 16));
    CHECK(bg_detect_card_valid("4111 1111 1111 1111", 19));
    CHECK(bg_detect_card_valid("378282246310005", 15));     /* Amex */
    CHECK(bg_detect_card_valid("5555555555554444", 16));    /* Mastercard */
    CHECK(bg_detect_card_valid("2223003122003222", 16));    /* Mastercard 2-series */
    CHECK(bg_detect_card_valid("6011111111111117", 16));    /* Discover */
    CHECK(bg_detect_card_valid("3530111333300000", 16));    /* JCB */
    CHECK(!bg_detect_card_valid("4111111111111112", 16));   /* Luhn fails */
    CHECK(!bg_detect_card_valid("9111111111111119", 16));   /* no issuer 9 */
    CHECK(!bg_detect_card_valid("378282246310005000", 18)); /* Amex is 15 digits */
    CHECK(!bg_detect_card_valid("0000000000000000", 16));
    CHECK(!bg_detect_card_valid("41111111111", 11));
}

static void test_iban_validator(void)
{
    CHECK(bg_detect_iban_valid("GB82WEST12345698765432", 22));
    CHECK(bg_detect_iban_valid("GB82 WEST 1234 5698 7654 32", 27));
    CHECK(bg_detect_iban_valid("DE89370400440532013000", 22));
    CHECK(bg_detect_iban_valid("NO9386011117947", 15));
    CHECK(!bg_detect_iban_valid("GB82WEST12345698765433", 22)); /* mod 97 */
    CHECK(!bg_detect_iban_valid("GB82WEST1234569876543", 21));  /* length for GB */
    CHECK(!bg_detect_iban_valid("QQ82WEST12345698765432", 22)); /* no such country */
    CHECK_INT(bg_detect_iban_length("FR"), 27);
    CHECK_INT(bg_detect_iban_length("US"), 0);
}

static void test_ssn_validator(void)
{
    CHECK(bg_detect_ssn_valid("078-05-1123", 11));
    CHECK(bg_detect_ssn_valid("536-22-1234", 11));
    CHECK(bg_detect_ssn_valid("536 22 1234", 11));
    CHECK(bg_detect_ssn_valid("536221234", 9));
    CHECK(!bg_detect_ssn_valid("000-12-3456", 11));
    CHECK(!bg_detect_ssn_valid("666-12-3456", 11));
    CHECK(!bg_detect_ssn_valid("912-12-3456", 11));
    CHECK(!bg_detect_ssn_valid("536-00-1234", 11));
    CHECK(!bg_detect_ssn_valid("536-22-0000", 11));
    CHECK(!bg_detect_ssn_valid("536-22.1234", 11));
    CHECK(!bg_detect_ssn_valid("123-45-6789", 11));
}

static void test_email_ip_validators(void)
{
    CHECK(bg_detect_email_valid("ann.lee+x@mail.example.com", 26));
    CHECK(bg_detect_email_valid("a@xn--80ak6aa92e.com", 20));
    CHECK(!bg_detect_email_valid("logo@2x.png", 11));
    CHECK(!bg_detect_email_valid("lodash@4.17.21", 14));
    CHECK(!bg_detect_email_valid("a..b@example.com", 16));
    CHECK(!bg_detect_email_valid("a@b", 3));
    CHECK(!bg_detect_email_valid(".a@example.com", 14));
    CHECK(!bg_detect_email_valid("a.@example.com", 14));
    CHECK(!bg_detect_email_valid("a@b@example.com", 15));
    CHECK(bg_detect_email_valid("o'neil_%x@example.com", 21));
    CHECK(bg_detect_email_domain_valid("mail.example.co.uk", 18));
    CHECK(!bg_detect_email_domain_valid("example", 7));
    CHECK(!bg_detect_email_domain_valid("-a.example.com", 14));
    CHECK(!bg_detect_email_domain_valid("a-.example.com", 14));
    CHECK(!bg_detect_email_domain_valid("a..example.com", 14));
    CHECK(!bg_detect_email_domain_valid("2x.png", 6));
    CHECK(!bg_detect_email_domain_valid("b@example.com", 13));
    CHECK(!bg_detect_ipv4_valid("1.2.3.1000", 10));
    CHECK(bg_detect_ipv4_valid("255.0.10.99", 11));
    CHECK(bg_detect_ipv4_valid("192.168.1.1", 11));
    CHECK(!bg_detect_ipv4_valid("192.168.1.256", 13));
    CHECK(!bg_detect_ipv4_valid("192.168.01.1", 12));
    CHECK(!bg_detect_ipv4_valid("1.2.3", 5));
    CHECK(!bg_detect_ipv4_valid("1.2.3.4.5", 9));
    CHECK(bg_detect_ipv6_valid("2001:db8::1", 11));
    CHECK(bg_detect_ipv6_valid("::ffff:192.168.1.1", 18));
    CHECK(bg_detect_ipv6_valid("fe80::1%eth0", 12));
    CHECK(bg_detect_ipv6_valid("2001:db8:0:0:0:0:2:1", 20));
    CHECK(!bg_detect_ipv6_valid("2001::db8::1", 12));
    CHECK(!bg_detect_ipv6_valid("12:34:56", 8));
    CHECK(!bg_detect_ipv6_valid("1:2:3:4:5:6:7:8:9", 17));
    CHECK(!bg_detect_ipv6_valid("::", 2));
    CHECK(!bg_detect_ipv6_valid("12345::1", 8));
}

/* ---------------------------------------------------------------- free text */

static void test_text_detectors_offsets(void)
{
    const char *s = "Mail ann.lee@example.com or call (415) 555-0132, card 4111 1111 1111 1111, "
                    "IBAN GB82 WEST 1234 5698 7654 32, SSN 078-05-1123, NI AB 12 34 56 C, from 203.0.113.7 "
                    "and 2001:db8::1, MAC 00:1A:2B:3C:4D:5E, IMEI 49-015420-323751-8.";
    text(s);
    CHECK_INT(R.body_kind, BG_BODY_TEXT);
    CHECK_FOUND("email", s, "ann.lee@example.com");
    CHECK_INT(nth("email", 0)->offset, 5);
    CHECK_FOUND("phone", s, "(415) 555-0132");
    CHECK_INT(nth("phone", 0)->offset, 33);
    CHECK_FOUND("card_number", s, "4111 1111 1111 1111");
    CHECK_FOUND("iban", s, "GB82 WEST 1234 5698 7654 32");
    CHECK_FOUND("us_ssn", s, "078-05-1123");
    CHECK_FOUND("uk_nino", s, "AB 12 34 56 C");
    CHECK_FOUND("ip_address", s, "203.0.113.7");
    const bg_finding_t *v6 = nth("ip_address", 1);
    CHECK(v6 != NULL);
    if (v6)
        CHECK_SPAN(s + v6->offset, v6->length, "2001:db8::1");
    CHECK_FOUND("mac_address", s, "00:1A:2B:3C:4D:5E");
    CHECK_FOUND("imei", s, "49-015420-323751-8");
    CHECK_INT(R.nfindings, 10);
    CHECK(R.categories & (1u << BG_CAT_FINANCIAL));
    CHECK(R.categories & (1u << BG_CAT_DEVICE));
    CHECK(R.categories & (1u << BG_CAT_IDENTIFIER));
    CHECK_INT(R.nfindings, count("email") + count("phone") + count("card_number") + count("iban") +
                               count("us_ssn") + count("uk_nino") + count("ip_address") +
                               count("mac_address") + count("imei"));
}

static void test_text_lookalikes(void)
{
    /* Luhn-failing 16 digits, a 20-digit run containing a valid card, timestamps, order numbers,
     * versions, OIDs, invalid SSNs, broken IBAN checksums, a retina asset, a package version,
     * times and short hex runs, a date, broadcast MAC. */
    text("order 4111111111111112; ref 41111111111111110000; ts 1705514597087; "
         "Chrome/120.0.5807.148; v=3.14.22.190; oid 1.3.6.1.4.1.23067; 1.2.3.4.5; "
         "claim 666-12-3456 and 536-22-0000; GB82WEST12345698765433; logo@2x.png lodash@4.17.21; "
         "at 12:34:56 ratio 1:2:3:4 build bb:61:e0:91:fa on 2024-10-13; FF:FF:FF:FF:FF:FF; "
         "zip 49865; isbn 978-3-16-148410-0; std::cout");
    CHECK_INT(R.nfindings, 0);
    CHECK_INT(R.categories, 0);
}

/* Classify s as free text: its first finding of det spans want exactly, or (want NULL) there is none. */
static void check_first(const char *s, const char *det, const char *want, int line)
{
    text(s);
    const bg_finding_t *f = nth(det, 0);
    if (!want ? f != NULL : !f || f->length != strlen(want) || memcmp(s + f->offset, want, f->length) != 0)
        bg_test_fail(__FILE__, line, "\"%s\": %s \"%.*s\", want \"%s\"", s, det, f ? (int)f->length : 0,
                     f ? s + f->offset : "", want ? want : "(none)");
}

/* A dotted quad after a version word is a version; a Luhn-valid run of 12 to 15 digits after a word
 * naming another kind of number is that number, unless a card word is near; context words count only
 * where a word starts. */
static void test_version_and_number_words(void)
{
    static const struct {
        const char *s, *det, *want; /* want NULL: no finding of det */
    } cases[] = {
        {"version 1.2.3.4", "ip_address", NULL},
        {"Build 7.95.235.38 is out", "ip_address", NULL},
        {"firmware: 10.2.33.4", "ip_address", NULL},
        {"rev #10.2.33.4", "ip_address", NULL},
        {"login from 10.2.3.4", "ip_address", "10.2.3.4"},
        {"the release notes say: login from 10.2.3.4", "ip_address", "10.2.3.4"},
        {"prebuild 10.2.3.4", "ip_address", "10.2.3.4"}, /* a whole word only */
        {"build10.2.3.4", "ip_address", NULL},            /* glued to a word: not an address either */
        {"Tracking number: 638975514362", "card_number", NULL},
        {"order 378282246310005", "card_number", NULL},
        {"order 378282246310005 paid with amex", "card_number", "378282246310005"},
        {"Order paid by card 638975514362", "card_number", "638975514362"},
        {"order 4111111111111111", "card_number", "4111111111111111"}, /* 16 digits: still a card */
        {"order 4111 1111 1111 1111", "card_number", "4111 1111 1111 1111"}, /* grouped: a card */
        {"Paid with 638975514362", "card_number", "638975514362"},
        {"Product code 566288565872", "card_number", NULL},
        /* Grouped cards print four digits first; three-digit groups are thousands or a SIRET. */
        {"SIRET 616 945 985 14590", "card_number", NULL},
        {"685 207 405 125 items processed", "card_number", NULL},
        {"paid with 4111 1111 1111 1111", "card_number", "4111 1111 1111 1111"},
        {"amex 3782 822463 10005", "card_number", "3782 822463 10005"},
        /* A document's outline numbers are no addresses. */
        {"see section 3.4.6.2", "ip_address", NULL},
        {"Clause 4.2.1.3 applies", "ip_address", NULL},
        {"RFC 2142 \xc2\xa7" "1.1.5.1", "ip_address", NULL},
        {"see \xc2\xa7 6.5.3.7", "ip_address", NULL},
        {"the server 3.4.6.2 answered", "ip_address", "3.4.6.2"},
        /* Context words count where a word starts: "hotel" holds no "tel", "during" no "ring". */
        {"During the year we sold 1234567 items", "phone", NULL},
        {"Hotel rooms: 2345678 nights", "phone", NULL},
        {"context window 1048576 tokens", "phone", NULL},
        {"Intel shipped 12345678 chips", "phone", NULL},
        {"telemetry 1234567", "phone", NULL},
        {"Reno. 0301234567", "phone", NULL},
        {"Tel 0301234567", "phone", "0301234567"},
        {"Telefon: 030 1234567", "phone", "030 1234567"},
        {"No. 0301234567", "phone", "0301234567"},
        {"please recall 0301234567 and call 0301234568", "phone", "0301234568"},
        /* Six digits: a phone only where a phone word is one of the three words before them. */
        {"Phone: 049819", "phone", "049819"},
        {"My phone number is 950 932", "phone", "950 932"},
        {"You can call 33 93 31", "phone", "33 93 31"},
        {"Call of Duty sold 123 456 copies", "phone", NULL},
        {"reach 100 000 users", "phone", NULL},
        {"call me on 10.10.24", "phone", NULL},
        {"call 123456abc", "phone", NULL},
        {"mobile 12 34 5", "phone", NULL},
        {"order 123456", "phone", NULL},
        {"phone AKIA-123456", "phone", NULL},
        {"phone #123456", "phone", NULL},
        {"phone QQ 12 34 56 C", "phone", NULL},
        {"TEL 12 34 56", "phone", "12 34 56"},
        /* A NANP number ends after its last group when another separator follows. */
        {"phone 415-555-2671 12 items", "phone", "415-555-2671"},
        {"415-555-2671 10.0.0.1", "phone", "415-555-2671"},
        {"415-555-2671 10.0.0.1", "ip_address", "10.0.0.1"},
        {"call (415) 555-2671 10 times", "phone", "(415) 555-2671"},
        {"phone 415-555-2671 x12", "phone", "415-555-2671 x12"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_first(cases[i].s, cases[i].det, cases[i].want, __LINE__);
}

/* "//" opens a URL's host, so a dotted quad after it is an address, not a product version
 * ("Chrome/120.0.1.2"); a four-part OID after "OID" is no address. */
static void test_url_hosts_and_oids(void)
{
    static const struct {
        const char *s, *det, *want;
    } cases[] = {
        {"GET http://125.110.26.137:8080/status returned 502", "ip_address", "125.110.26.137"},
        {"see //81.2.69.160/x", "ip_address", "81.2.69.160"},
        {"UA Chrome/120.0.1.2 here", "ip_address", NULL},
        {"cdn.example.com/1.2.3.4/app.js", "ip_address", NULL},
        {"OID 2.5.4.3", "ip_address", NULL},
        {"oid=2.5.4.10 set", "ip_address", NULL},
        {"void 2.5.4.3", "ip_address", "2.5.4.3"}, /* a whole word only */
        {"pkg==3.18.3.231", "ip_address", NULL},     /* version specifiers (PEP 440, npm) */
        {"lib>=1.2.3.4 and <=2.0.0.1", "ip_address", NULL},
        {"dep~=1.2.3.4", "ip_address", NULL},
        {"host=10.2.3.4", "ip_address", "10.2.3.4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_first(cases[i].s, cases[i].det, cases[i].want, __LINE__);
}

/* A quoted local part (RFC 5322) is part of the address; a quote glued to a word, an empty pair or
 * a backslash inside is not one. */
static void test_email_quoted_local(void)
{
    static const struct {
        const char *s, *want;
    } cases[] = {
        {"quoted: \"john.smith\"@example.org ok", "\"john.smith\"@example.org"},
        {"to \"John Smith\"@mail.example.co.uk.", "\"John Smith\"@mail.example.co.uk"},
        {"x\"ab\"@example.org", NULL},
        {"a \"\"@example.org", NULL},
        {"a \"x\\y\"@example.org", NULL},
        {"plain ann@example.org", "ann@example.org"},
        {"Reply-To: \"Jürgen Müller\"@example.org", "\"Jürgen Müller\"@example.org"}, /* RFC 6532 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_first(cases[i].s, "email", cases[i].want, __LINE__);
}

/* A latitude, longitude pair inside prose, or in a geo URI, is a location; not a pair in a longer
 * list of numbers, not two-decimal amounts, not out of range, and not a whole value under a key
 * that names something else (there the key decides). */
static void test_text_coordinates(void)
{
    static const struct {
        const char *s, *want;
    } cases[] = {
        {"I am at 48.85661, 2.35222 right now", "48.85661, 2.35222"},
        {"pin -33.8688,151.2093.", "-33.8688,151.2093"},
        {"open geo:37.786971,-122.399677;u=35", "geo:37.786971,-122.399677"},
        {"geo:52.52,13.40", "geo:52.52,13.40"},
        {"values 0.1234, 48.85661, 2.35222 seen", NULL},
        {"values 48.85661, 2.35222, 0.5 seen", NULL},
        {"totals 48.85, 2.35 seen", NULL},
        {"at 98.85661, 2.35222 x", NULL},
        {"at 48.85661, 182.35222 x", NULL},
        {"v 1.48.85661, 2.35222 x", NULL},
        {"48.85661, 2.35222", NULL},
        {"Meet me at -48.9902,96.5776, ok?", "-48.9902,96.5776"},
        {"Paris, 48.85661, 2.35222 it is", "48.85661, 2.35222"},
        {"values 7, 48.85661, 2.35222 seen", NULL},
        {"values 48.85661, 2.35222, -0.5 seen", NULL},
        /* A word naming what the pair measures says it is no position. */
        {"scale factor 42.1910, 108.7414", NULL},
        {"weights: 12.7512, 40.8123 after training", NULL},
        {"p50/p99 latency 21.7605, 79.2215", NULL},
        {"the scale is fine; we are at 42.1910, 108.7414", "42.1910, 108.7414"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_first(cases[i].s, "coordinates", cases[i].want, __LINE__);
    body_as("application/json", "{\"ratio\": \"40.58781,-105.72384\", \"note\": \"met at 40.58781, -105.72384\"}");
    CHECK_INT(count("coordinates"), 1);
}

/* A run of 12 to 15 digits labelled as another kind of number is that number whether or not it is
 * grouped; 16 digits or a card word nearby still make a card. */
static void test_labelled_grouped_numbers(void)
{
    static const struct {
        const char *s, *want;
    } cases[] = {
        {"Ref 6704-5431-5607", NULL},
        {"Tracking 6704 5431 5607", NULL},
        {"Ref 6704-5431-5607 on your debit card", "6704-5431-5607"},
        {"Paid 6704-5431-5607", "6704-5431-5607"},
        {"order 4111 1111 1111 1111", "4111 1111 1111 1111"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_first(cases[i].s, "card_number", cases[i].want, __LINE__);
}

static void test_phone_context(void)
{
    const char *s = "Phone: 040 379 2455";
    text(s);
    CHECK_FOUND("phone", s, "040 379 2455");
    s = "You can reach me on +44 20 7946 0958 x123 today";
    text(s);
    CHECK_FOUND("phone", s, "+44 20 7946 0958 x123");
    /* Digits without context or phone shape are not phones. */
    text("Meet me at 7943 2027 Prospect St");
    CHECK_INT(count("phone"), 0);
    text("The invoice number is 12345678");
    CHECK_INT(count("phone"), 0);
    s = "ring 425 882 9090";
    text(s);
    CHECK_FOUND("phone", s, "425 882 9090");
    text("lot 125 882 9090"); /* no NANP area code starts with 1 */
    CHECK_INT(count("phone"), 0);
    /* Where the first run of digits is short or long, the rest decides (phone_may). */
    static const struct {
        const char *s, *want; /* want NULL: no phone */
    } runs[] = {
        {"tel 12 3456 7890", "12 3456 7890"}, {"tel 1234567", "1234567"}, {"tel 123456", "123456"}, {"tel 12345", NULL},
        {"tel 123456789012345", "123456789012345"}, {"tel 1234567890123456", NULL},
        {"tel 12.(345) 678", "12.(345) 678"}, {"tel 12 x3456789", NULL}, {"tel 12-3 4567", NULL},
        {"tel 12/34567", "12/34567"}, {"tel 12 - 34567", NULL}, {"tel 12 34567", "12 34567"},
        {"700 Main Street, tel 0301234567 or 030/1234567", "0301234567"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++)
        check_first(runs[i].s, "phone", runs[i].want, __LINE__);
}

/* Phone context words must say what these digits are: a word after the number counts whole
 * ("(work)", not "worker=3"), and a number word must label the digits themselves, not an earlier
 * number ("Part No. 624-05-3445-P, ISBN 978-2-236-43990-1"). */
static void test_phone_words_label_the_number(void)
{
    static const struct {
        const char *s, *want; /* want NULL: no phone */
    } cases[] = {
        {"ts=1641117983 worker=3", NULL},
        {"batch 20220401100223 workflow done", NULL},
        {"0301234567 homepage", NULL},
        {"0301234567 (work)", "0301234567"},
        {"030 1234567 office", "030 1234567"},
        {"Part No. 624-05-3445-P, montant ISBN 978-2-236-43990-1.", NULL},
        {"tracking number 1ZHDRIFJYPWDKBHCDB / EAN 7644778947408", NULL},
        {"My number is 0301234567", "0301234567"},
        {"No. 0301234567", "0301234567"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_first(cases[i].s, "phone", cases[i].want, __LINE__);
}

/* A phone word labels the first number after it, not a later one; a decimal, a date with its time
 * and the digits of a longer code that a letter ends are not phones (nor SSNs). */
static void test_phone_word_reach(void)
{
    static const struct {
        const char *s, *det, *want; /* want NULL: no finding of det */
    } cases[] = {
        {"called from 089/8332141 about batch 202276528298", "phone", "089/8332141"},
        {"called from +49 30 6973729 about KVK 35110073", "phone", "+49 30 6973729"},
        {"call me at 5 pm on 0301234567", "phone", "0301234567"},
        {"called about x=10.63487 y=79.98498", "phone", NULL},
        {"call back about 2023-04-09 11:55:58,063", "phone", NULL},
        {"Part No. 937-76-6755-S", "phone", NULL},
        {"Part No. 247-59-7193-Z", "us_ssn", NULL},
        {"SSN 247-59-7193, thanks", "us_ssn", "247-59-7193"},
        {"Tel. 030-1234567-0", "phone", "030-1234567-0"},
        {"0910-5877671-Office, (311)905-4466x8827-Fax", "phone", "0910-5877671"},
        {"(311)905-4466x8827-Fax", "phone", "(311)905-4466x8827"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_first(cases[i].s, cases[i].det, cases[i].want, __LINE__);
    /* The later number is no phone: one finding each. */
    text("called from 089/8332141 about batch 202276528298");
    CHECK_INT(count("phone"), 1);
    text("called from +49 30 6973729 about KVK 35110073");
    CHECK_INT(count("phone"), 1);
    text("Phone: 0301234567, fax 0301234568");
    CHECK_INT(count("phone"), 2);
}

/* Phone words as people write them in German, French, Spanish, Dutch, Italian, Polish, Portuguese
 * and Japanese label a number as "phone" and "call" do. */
static void test_phone_words_other_languages(void)
{
    static const struct {
        const char *s, *want; /* want NULL: no phone */
    } cases[] = {
        {"Llámame al 91 126 23 11, gracias", "91 126 23 11"},
        {"Mi teléfono: 612 345 678", "612 345 678"},
        {"titulaire Chloé Martin, tél. 06 31 68 18 16", "06 31 68 18 16"},
        {"Appelez-moi au 01 23 45 67 89", "01 23 45 67 89"},
        {"Il mio cellulare 347 123 4567", "347 123 4567"},
        {"chiamami al 347 123 4567", "347 123 4567"},
        {"Proszę o kontakt: 512 345 678", "512 345 678"},
        {"Handy: 0171 5316715", "0171 5316715"},
        {"mobiel 06-75638857", "06-75638857"},
        {"ligue para (11) 94478-1505", "(11) 94478-1505"},
        {"\xe9\x9b\xbb\xe8\xa9\xb1 03-6093-0097", "03-6093-0097"},      /* 電話 */
        {"\xe6\x90\xba\xe5\xb8\xaf 090 1234 5678", "090 1234 5678"},   /* 携帯 */
        {"\xe6\xb3\xa8\xe6\x96\x87 512 345 678", NULL},                /* 注文 (order) */
        {"sold 512 345 678 units", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_first(cases[i].s, "phone", cases[i].want, __LINE__);
}

/* National numbers are phones by their shape alone (a trunk '0' and its country's grouping; Brazil's
 * "(dd) dddd-dddd"; "00" and a country code), unless they are the tail of a longer group of digits
 * or a word names another kind of number. */
static void test_phone_national_shapes(void)
{
    static const struct {
        const char *s, *want; /* want NULL: no phone */
    } cases[] = {
        {"spoke to Fatima (020 7547 4465), wants invoices", "020 7547 4465"},
        {"spoke to Marie ((0161) 491 0426) today", "(0161) 491 0426"},
        {"via anna@example.org or 089/8413465.", "089/8413465"},
        {"or 0171 5316715.", "0171 5316715"},
        {"or 07528 765175", "07528 765175"},
        {"or 01 02 88 46 08", "01 02 88 46 08"},
        {"or 07.08.80.06.60", "07.08.80.06.60"},
        {"or 03-6093-0097", "03-6093-0097"},
        {"or 090-1234-5678", "090-1234-5678"},
        {"or (11) 94478-1505", "(11) 94478-1505"},
        {"or (21) 2345-6789", "(21) 2345-6789"},
        {"or 11 94697-5885", "11 94697-5885"},
        {"lot 11 54697-5885", NULL}, /* no mobile 9 */
        {"or 0049 40 3030073", "0049 40 3030073"},
        {"or 001 212 555 0134", "001 212 555 0134"},
        {"ref 7086 0035 1098 6934", NULL},     /* the tail of a longer group */
        {"SIRET 005 949 324 18381", NULL},     /* no country code "5" */
        {"account 0123 456789", NULL},         /* a word names the number */
        {"SKU 0949-4229-4443", NULL},          /* twelve digits */
        {"ISBN 0-306-40615-2", NULL},
        {"on 05 03 2024 12", NULL},
        {"x 0.1234567890", NULL},
        {"ratio 01.234 5678", NULL},
        {"votre num\xc3\xa9ro 097567 54972 est enregistr\xc3\xa9", "097567 54972"}, /* India: 0 and 5-5 */
        {"AWB 007-02149977", NULL},            /* an air waybill: "00" in two groups is no dialling code */
        {"Vorgang 0495/425022", NULL},         /* a German case number */
        {"dossier 0495 425022", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_first(cases[i].s, "phone", cases[i].want, __LINE__);
}

/* "numero", "número", "Nummer", "numer" say "my number is" as "number" does, and the words for
 * account, order, invoice and customer in those languages say it is another kind of number. */
static void test_phone_number_words_other_languages(void)
{
    static const struct {
        const char *s, *want; /* want NULL: no phone */
    } cases[] = {
        {"Il mio numero \xc3\xa8 514 621 580, scrivimi", "514 621 580"},
        {"Mi n\xc3\xbamero es 612 345 678", "612 345 678"},
        {"Meine Nummer: 30 12345678", "30 12345678"},
        {"M\xc3\xb3j numer to 512 345 678", "512 345 678"},
        {"N\xc3\xbamero de cuenta 1234567890", NULL},
        {"Kontonummer 1234567890", NULL},
        {"num\xc3\xa9ro de commande 1234567890", NULL},
        {"Rechnungsnummer 1234567890", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_first(cases[i].s, "phone", cases[i].want, __LINE__);
}

/* The context readers stop at the end of the value: each text here ends right after a short word,
 * a section sign's first byte or a hyphen, in a heap block of exactly its length (the ASan build
 * reports a read past it). */
/* Digits that end an identifier (after "CVE-", "_", "#", a path's "/") are no phones, even where a
 * phone or number word is near; thousands ("10 000 000") are none under a mere number word. */
static void test_phone_not_identifiers(void)
{
    static const struct {
        const char *s, *want; /* want NULL: no phone */
    } cases[] = {
        {"the number CVE-2015-2326 was fixed", NULL},
        {"check more numbers in bug_20160907()", NULL},
        {"call handler (LP: #1919404)", NULL},
        {"contact list: https://lists.example.org/message/32939144/", NULL},
        {"a large number, namely 10 000 000.", NULL},
        {"You can call 75 196 772", "75 196 772"},  /* a phone word tells it from a count */
        {"+ 9.0.241/242: install the files, call 0301234567", "0301234567"},
        {"Proszę o kontakt: 512 345 678", "512 345 678"},
        {"Tel. +49 30 1234567", "+49 30 1234567"},
        {"Tel: 030-1234567", "030-1234567"},
        {"call +(49) 30 1234567", "+(49) 30 1234567"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_first(cases[i].s, "phone", cases[i].want, __LINE__);
}

static void test_context_reads_stay_inside(void)
{
    static const char *const texts[] = {"tel 0301234567 wor", "tel 0301234567 ho", "0301234567 w",
                                        "RFC \xc2", "ip 10.1.2.3 \xc2", "Part No. 937-76-6755-", "937-76-6755-S",
                                        "or 0049 40 3030073", "or 11 94697-5885", "at 42.1910, 108.7414"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t n = strlen(texts[i]);
        char *b = malloc(n);
        CHECK(b != NULL);
        memcpy(b, texts[i], n);
        reset_headers();
        add_header("Content-Type", "text/plain");
        classify_full(NULL, b, n, false);
        free(b);
    }
}

static void test_text_dob_and_paths(void)
{
    const char *s = "Date of birth: 31/01/1990, joined 2024-10-13";
    reset_headers();
    add_header("Content-Type", "text/plain");
    add_header("X-Note", "none");
    classify_full(NULL, s, strlen(s), false);
    CHECK_INT(count("date_of_birth"), 1);
    CHECK_FOUND("date_of_birth", s, "31/01/1990");
    /* A text body's finding names no key: not the last header scanned. */
    CHECK_STR(nth("date_of_birth", 0)->path, "");
    CHECK_INT(nth("date_of_birth", 0)->where, BG_WHERE_BODY);
}

/* A birth date with its month's name, after "DOB", "date of birth", "born": the whole date, the
 * month included when it comes first; not a date without those words, nor a day and month alone. */
static void test_text_dob_month_names(void)
{
    const char *s = "DOB 15 March 1985 on file";
    text(s);
    CHECK_FOUND("date_of_birth", s, "15 March 1985");
    s = "I was born on September 22, 1982.";
    text(s);
    CHECK_FOUND("date_of_birth", s, "September 22, 1982");
    s = "Date of birth: 3rd Sept. 1971";
    text(s);
    CHECK_FOUND("date_of_birth", s, "3rd Sept. 1971");
    s = "Patient DOB: Nov 5 2001";
    text(s);
    CHECK_FOUND("date_of_birth", s, "Nov 5 2001");
    text("Released on 15 March 1985 worldwide");
    CHECK_INT(count("date_of_birth"), 0);
    text("born on 15 March, twins");
    CHECK_INT(count("date_of_birth"), 0);
    text("DOB 32 March 1985, born 12 Marchpane 1985");
    CHECK_INT(count("date_of_birth"), 0);
    text("born 12 items 1985");
    CHECK_INT(count("date_of_birth"), 0);
}

static void test_jwt_and_api_keys(void)
{
    const char *s = "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U "
                    "key sk_live_4eC39HqLyjWDarjtT1zdp7dc and AKIAIOSFODNN7EXAMPLE";
    text(s);
    CHECK_FOUND("jwt", s, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U");
    CHECK_FOUND("api_key", s, "sk_live_4eC39HqLyjWDarjtT1zdp7dc");
    CHECK_INT(count("api_key"), 2);
    CHECK(R.categories == (1u << BG_CAT_CREDENTIAL));
    /* An AWS key id without a digit (16 base32 letters) is still one; 15 or 17 capitals after
     * AKIA/ASIA are not. */
    s = "key AKIAFJYLHIDSILXZPPED for the staging env";
    text(s);
    CHECK_FOUND("api_key", s, "AKIAFJYLHIDSILXZPPED");
    text("AKIAFJYLHIDSILXZPPE AKIAFJYLHIDSILXZPPEDQ ASIAABCDEFGHIJKLMNOPQ");
    CHECK_INT(count("api_key"), 0);
    /* A base64 image and a SHA-256 are not credentials. */
    text("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ "
         "3dd6f8cfae21eadab69bcbddae12535219baef86fbd9e1054eb2819adc75fbcf");
    CHECK_INT(R.nfindings, 0);
}

/* An IMEI after its word is a device id, not the card its digits also pass for (Luhn-valid with an
 * Amex or UATP prefix) nor the phone that "my phone's" suggests, plain or printed as TAC, serial
 * and check digit; the same digits without the word stay a card. */
static void test_imei_before_card_and_phone(void)
{
    const char *s = "IMEI: 349205313907656";
    text(s);
    CHECK_FOUND("imei", s, "349205313907656");
    CHECK_INT(count("card_number"), 0);
    s = "imei 170805410979161.";
    text(s);
    CHECK_FOUND("imei", s, "170805410979161");
    CHECK_INT(count("card_number"), 0);
    s = "My phone's IMEI is 75314499 858678 3";
    text(s);
    CHECK_FOUND("imei", s, "75314499 858678 3");
    CHECK_INT(count("phone"), 0);
    body_as("application/json", "{\"device\": {\"imei\": \"03048437 912224 5\"}}");
    CHECK_INT(count("imei"), 1);
    s = "Card 349205313907656 was charged";
    text(s);
    CHECK_FOUND("card_number", s, "349205313907656");
    CHECK_INT(count("imei"), 0);
    /* Eight-six-one without the word is no IMEI (nor is a Luhn-failing one with it). */
    text("ref 75314499 858678 3");
    CHECK_INT(count("imei"), 0);
    text("IMEI 75314499 858678 4");
    CHECK_INT(count("imei"), 0);
}

/* ---------------------------------------------------------------- JSON */

static void test_json_paths_offsets(void)
{
    const char *b = "{\"user\":{\"first_name\":\"Audie\",\"email\":\"a.b@example.com\",\"phone\":\"(947) 336-6384\","
                    "\"dob\":\"1965-09-18\",\"app_version\":\"2.12.2.1\"},\"items\":[{\"n\":1},{\"ip\":\"10.0.0.1\"}],"
                    "\"lat\":45.22251,\"lon\":-137.68676}";
    body_as("application/json", b);
    CHECK_INT(R.body_kind, BG_BODY_JSON);
    CHECK(!R.unscannable);
    CHECK_FOUND("person_name", b, "Audie");
    CHECK_STR(nth("person_name", 0)->path, "$.user.first_name");
    CHECK_FOUND("email", b, "a.b@example.com");
    CHECK_STR(nth("email", 0)->path, "$.user.email");
    CHECK_INT(nth("email", 0)->json_string, 1);
    CHECK_FOUND("phone", b, "(947) 336-6384");
    CHECK_FOUND("date_of_birth", b, "1965-09-18");
    CHECK_FOUND("ip_address", b, "10.0.0.1");
    CHECK_STR(nth("ip_address", 0)->path, "$.items[1].ip");
    CHECK_INT(count("ip_address"), 1); /* the app_version is not an address */
    CHECK_INT(count("coordinates"), 2);
    CHECK_STR(nth("coordinates", 0)->path, "$.lat");
    CHECK_INT(nth("coordinates", 0)->json_string, 0);
    CHECK_FOUND("coordinates", b, "45.22251");
    CHECK(R.categories & (1u << BG_CAT_LOCATION));
}

static void test_json_escapes(void)
{
    const char *b = "{\"e\\u006dail\":\"ann\\u0040example.com\",\"note\":\"tel +44 20 7946 0958\"}";
    body_as("application/json", b);
    CHECK_FOUND("email", b, "ann\\u0040example.com");
    CHECK_INT(nth("email", 0)->encoded, 1);
    CHECK_FOUND("phone", b, "+44 20 7946 0958");
    CHECK_INT(nth("phone", 0)->encoded, 0);
}

static void test_json_names_and_siblings(void)
{
    const char *b = "{\"name\":\"Awesome Metal Keyboard\",\"sku\":\"SKU-84144\",\"price\":981.89,\"version\":\"9.2.18.188\"}";
    body_as("application/json", b);
    CHECK_INT(R.nfindings, 0);
    b = "{\"contacts\":[{\"name\":\"Robyn Rolfson\",\"mobile\":\"+14692294179\"}],\"product\":{\"name\":\"Widget Pro\"}}";
    body_as("application/json", b);
    CHECK_INT(count("person_name"), 1);
    CHECK_FOUND("person_name", b, "Robyn Rolfson");
    CHECK_STR(nth("person_name", 0)->path, "$.contacts[0].name");
    CHECK_FOUND("phone", b, "+14692294179");
    /* The product key may come after the name: the decision waits for the object's end. */
    b = "{\"name\":\"Frozen Bike\",\"id\":7,\"price\":3}";
    body_as("application/json", b);
    CHECK_INT(count("person_name"), 0);
    b = "{\"card\":{\"number\":\"4111-1111-1111-1111\",\"holder_name\":\"Dennis Franecki\"}}";
    body_as("application/json", b);
    CHECK_FOUND("card_number", b, "4111-1111-1111-1111");
    CHECK_FOUND("person_name", b, "Dennis Franecki");
}

static void test_json_keys_lookalikes(void)
{
    body_as("application/json",
            "{\"request_id\":\"80ea35a5-ed12-49fc-90bb-fc53c517fc22\",\"trace_id\":\"876d053ac202ff2c28c4ab12ef16adfb\","
            "\"order_id\":\"4111111111111112\",\"created_at_ms\":1705514597087,\"duration_ms\":8377762,"
            "\"chart\":{\"x\":86.82301,\"y\":-63.50127},\"ratio\":\"40.58781,-105.72384\","
            "\"dependency\":\"lodash@4.17.21\",\"time\":\"12:34:56\",\"color\":\"#cd9bd8\",\"version\":\"1.2.3.4\"}");
    CHECK_INT(R.nfindings, 0);
    const char *b = "{\"device\":{\"device_id\":\"80ea35a5-ed12-49fc-90bb-fc53c517fc22\",\"imei\":\"87-071186-498874-5\","
                    "\"idfa\":\"00000000-0000-0000-0000-000000000000\"},\"last_fix\":\"-1.59444,-85.77912\"}";
    body_as("application/json", b);
    CHECK_FOUND("device_id", b, "80ea35a5-ed12-49fc-90bb-fc53c517fc22");
    CHECK_INT(count("device_id"), 1); /* an all-zero advertising id means "limit ad tracking" */
    CHECK_INT(count("imei"), 1);
    CHECK_FOUND("coordinates", b, "-1.59444,-85.77912");
    b = "{\"api_key\":\"sk_live_qHZ2DDsUJwwMOLCii4q595uT5FVZLWBJ\",\"password\":\"hunter2hunter2\",\"csrf_token\":\"abcdefghijkl\"}";
    body_as("application/json", b);
    CHECK_INT(count("api_key"), 2);
    CHECK_FOUND("api_key", b, "sk_live_qHZ2DDsUJwwMOLCii4q595uT5FVZLWBJ");
    b = "{\"applicant\":{\"ssn\":\"670-85-8156\",\"nino\":\"PS 41 83 70 C\"},\"claim_no\":\"097-51-0000\"}";
    body_as("application/json", b);
    CHECK_FOUND("us_ssn", b, "670-85-8156");
    CHECK_INT(count("us_ssn"), 1);
    CHECK_FOUND("uk_nino", b, "PS 41 83 70 C");
}

/* Numbers in an array under a location key are coordinates (GeoJSON's [lng, lat], polygons);
 * not integers or a layout's one- and two-decimal positions, nor arrays under other keys. */
static void test_json_coordinate_arrays(void)
{
    const char *b = "{\"type\": \"Feature\", \"geometry\": {\"type\": \"Point\", \"coordinates\": [-73.98571, 40.748441]}}";
    body_as("application/json", b);
    CHECK_INT(count("coordinates"), 2);
    CHECK_FOUND("coordinates", b, "-73.98571");
    const bg_finding_t *lat = nth("coordinates", 1);
    CHECK(lat != NULL);
    if (lat) {
        CHECK_SPAN(b + lat->offset, lat->length, "40.748441");
        CHECK_STR(lat->path, "$.geometry.coordinates[1]");
    }
    body_as("application/json", "{\"coordinates\": [[[2.352, 48.8566], [2.3601, 48.861]]]}");
    CHECK_INT(count("coordinates"), 4);
    body_as("application/json", "{\"widget\": {\"position\": [12.5, 40.25], \"location\": [3, 4]}, "
                                "\"ratios\": [40.58781, -105.72384], \"coordinates\": [200.1234, 1.5]}");
    CHECK_INT(count("coordinates"), 0);
}

/* Names under payment and travel keys (payee, beneficiary, passenger ...) are a person's; handles,
 * banks, merchants, files and hosts under *_name keys are not. A device's "id", OpenRTB's "ifa"
 * and push tokens are device ids; an "id" elsewhere is not. */
static void test_json_more_name_and_device_keys(void)
{
    const char *b = "{\"beneficiary_name\": \"Jane Doe\", \"payeeName\": \"John Roe\", \"debtor_name\": \"Ann Lee\", "
                    "\"passenger_name\": \"Li Wei\"}";
    body_as("application/json", b);
    CHECK_INT(count("person_name"), 4);
    CHECK_FOUND("person_name", b, "Jane Doe");
    body_as("application/json", "{\"username\": \"JaneDoe85\", \"screen_name\": \"JaneDoe\", \"nickname\": \"Janey\", "
                                "\"bank_name\": \"Deutsche Bank\", \"merchant_name\": \"Acme Store\", "
                                "\"file_name\": \"Report.pdf\", \"host_name\": \"Web01\", \"city_name\": \"Berlin\"}");
    CHECK_INT(R.nfindings, 0);
    b = "{\"context\": {\"device\": {\"id\": \"B5372DB0-C21E-11E4-8DFC-AA07A5B093DB\", \"name\": \"Maguro\"}}, "
        "\"imp\": [{\"id\": \"1\"}], \"user\": {\"id\": \"55a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b\"}}";
    body_as("application/json", b);
    CHECK_INT(count("device_id"), 1);
    CHECK_FOUND("device_id", b, "B5372DB0-C21E-11E4-8DFC-AA07A5B093DB");
    CHECK_INT(count("person_name"), 0);
    b = "{\"device\": {\"ifa\": \"6d92078a-8246-4ba4-ae5b-76104861e7dc\", \"ua\": \"x\"}, "
        "\"push_token\": \"740f4707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bb78ad\"}";
    body_as("application/json", b);
    CHECK_INT(count("device_id"), 2);
    CHECK_FOUND("device_id", b, "6d92078a-8246-4ba4-ae5b-76104861e7dc");
    body_as("application/json", "{\"order\": {\"id\": \"6d92078a-8246-4ba4-ae5b-76104861e7dc\"}, \"id\": \"B5372DB0-C21E-11E4\"}");
    CHECK_INT(R.nfindings, 0);
}

/* Name, phone and birth-date keys as French, Spanish, Portuguese, Italian, German, Dutch and Polish
 * APIs spell them; the bare word for "name" keeps "name"'s product rule. */
static void test_json_keys_other_languages(void)
{
    const char *b = "{\"nom\": \"Moreau\", \"prenom\": \"Camille\", \"telefone\": \"+55 11 91234-5678\", "
                    "\"date_de_naissance\": \"1985-03-14\"}";
    body_as("application/json", b);
    CHECK_INT(count("person_name"), 2);
    CHECK_FOUND("person_name", b, "Camille"); /* a bare "nom" is decided at the object's end */
    CHECK_SPAN(b + nth("person_name", 1)->offset, nth("person_name", 1)->length, "Moreau");
    CHECK_INT(count("phone"), 1);
    CHECK_FOUND("date_of_birth", b, "1985-03-14");
    b = "{\"Vorname\": \"Anna\", \"Nachname\": \"M\u00fcller\", \"Telefonnummer\": \"030 1234567\", "
        "\"Geburtsdatum\": \"14.03.1985\", \"apellidos\": \"Garc\u00eda L\u00f3pez\", \"cognome\": \"Rossi\", "
        "\"achternaam\": \"de Vries\", \"nazwisko\": \"Nowak\", \"fecha_nacimiento\": \"1990-01-31\"}";
    body_as("application/json", b);
    CHECK_INT(count("person_name"), 6);
    CHECK_INT(count("phone"), 1);
    CHECK_INT(count("date_of_birth"), 2);
    /* "nom" among product keys is the product's, as "name" is. */
    body_as("application/json", "{\"sku\": \"A-1\", \"nom\": \"Chaise Bistro\", \"prix\": 49}");
    CHECK_INT(count("person_name"), 0);
}

/* A sequence number is an id: neither card nor phone, even where its digits pass Luhn. */
static void test_json_sequence_keys(void)
{
    body_as("application/json", "{\"seq\": 638097588674, \"seqNo\": \"630495060000000000\", \"sequence_number\": 0301234567}");
    CHECK_INT(R.nfindings, 0);
    /* 16 digits that pass Luhn with an issuer prefix are a card under any key (test_card_under_id_keys). */
    body_as("application/json", "{\"seqNo\": \"4111111111111111\"}");
    CHECK_INT(count("card_number"), 1);
    body_as("application/json", "{\"card\": \"4111111111111111\"}");
    CHECK_INT(count("card_number"), 1);
}

static void test_json_unscannable(void)
{
    body_as("application/json", "{\"a\":1,}");
    CHECK(R.unscannable);
    CHECK_STR(R.unscannable_reason, "malformed_json");
    body_as("application/json", "{\"email\":\"ann@example.com\",\"x\":[1,2");
    CHECK(R.unscannable);
    CHECK_STR(R.unscannable_reason, "malformed_json");
    CHECK_INT(count("email"), 1); /* what was read before the cut is still reported */
    size_t n = 100000;
    char *deep = malloc(n + 1);
    memset(deep, '[', n);
    deep[n] = 0;
    body_as("application/json", deep);
    CHECK(R.unscannable);
    CHECK_STR(R.unscannable_reason, "json_too_deep");
    free(deep);
    /* No Content-Type: sniffed as JSON, and broken JSON falls back to text, not unscannable. */
    body_as(NULL, "{ call me at (415) 555-0132");
    CHECK(!R.unscannable);
    CHECK_INT(count("phone"), 1);
}

static void test_ai_route(void)
{
    const char *b = "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"Mail ann@example.com please\"}]}";
    reset_headers();
    add_header("Content-Type", "application/json");
    classify_full(NULL, b, strlen(b), true);
    CHECK_FOUND("ai_prompt", b, "Mail ann@example.com please");
    CHECK_INT(count("ai_prompt"), 1);
    CHECK_INT(count("email"), 0); /* inside the longer prompt span: one finding, the longest */
    CHECK(R.categories & (1u << BG_CAT_AI_INTERACTION));
    CHECK(R.categories & (1u << BG_CAT_IDENTIFIER)); /* ...but its category still counts */
    /* ...and the prompt answers for it: sealing identifiers must seal the prompt */
    CHECK_INT(nth("ai_prompt", 0)->covers, (1u << BG_CAT_AI_INTERACTION) | (1u << BG_CAT_IDENTIFIER));
    classify_full(NULL, b, strlen(b), false);
    CHECK_INT(nth("email", 0)->covers, 1u << BG_CAT_IDENTIFIER);
    CHECK_INT(count("ai_prompt"), 0);
    CHECK_INT(count("email"), 1);
    /* Many findings inside one prompt: still one span, no overlaps. */
    b = "{\"prompt\":\"a@b.example c@d.example e@f.example g@h.example i@j.example k@l.example m@n.example "
        "o@p.example q@r.example s@t.example 4111111111111111\"}";
    classify_full(NULL, b, strlen(b), true);
    CHECK_INT(R.nfindings, 1);
    CHECK_INT(count("ai_prompt"), 1);
    CHECK(R.categories & (1u << BG_CAT_FINANCIAL));
    CHECK_INT(R.findings[0].covers,
              (1u << BG_CAT_AI_INTERACTION) | (1u << BG_CAT_IDENTIFIER) | (1u << BG_CAT_FINANCIAL));
    /* A prompt with nothing else in it covers its own category only. */
    b = "{\"prompt\":\"what is the capital of France\"}";
    classify_full(NULL, b, strlen(b), true);
    CHECK_INT(R.nfindings, 1);
    CHECK_INT(R.findings[0].covers, 1u << BG_CAT_AI_INTERACTION);
}

/* ---------------------------------------------------------------- headers, path, query, form */

/* A name that is itself the value: JSON keys, query and form names, bare query items. Findings
 * cover the name exactly (what encrypt seals) and their path does not print it. */
static void test_names_that_are_values(void)
{
    const char *b = "{\"ann@example.com\":{\"plan\":\"pro\"},\"bob\\u0040example.org\":1,\"v2\":\"x\"}";
    reset_headers();
    add_header("Content-Type", "application/json");
    classify_full(NULL, b, strlen(b), false);
    CHECK_INT(count("email"), 2);
    CHECK_FOUND("email", b, "ann@example.com");
    CHECK_SPAN(b + nth("email", 1)->offset, nth("email", 1)->length, "bob\\u0040example.org");
    CHECK(nth("email", 0)->json_string);
    reset_headers();
    const char *t = "/u?ann%40example.com&203.0.113.7=1&page=2";
    classify_full(t, NULL, 0, false);
    CHECK_FOUND("email", t, "ann%40example.com");
    CHECK(nth("email", 0)->encoded);
    CHECK_FOUND("ip_address", t, "203.0.113.7");
    CHECK_INT(R.nfindings, 2);
    b = "cat%40example.com=1&x=y";
    body_as("application/x-www-form-urlencoded", b);
    CHECK_FOUND("email", b, "cat%40example.com");
    /* Paths never print a name that is a value, nor lead through one. */
    bg_classification_t r;
    bg_classification_init(&r, C);
    reset_headers();
    add_header("Content-Type", "application/json");
    b = "{\"ann@example.com\":{\"ip\":\"203.0.113.7\"}}";
    bg_classify_input_t in = {H, NH, "/u?cat%40example.com=198.51.100.7", 33, b, strlen(b), false, false, 0, false};
    CHECK_INT(bg_classify(C, &in, &r), 0);
    CHECK_INT(r.nfindings, 4);
    for (size_t i = 0; i < r.nfindings; i++)
        CHECK(!strstr(r.findings[i].path, "example") && !strstr(r.findings[i].path, "cat%40"));
    bg_classification_dispose(&r);
    /* Names without a digit or an '@' are not read as values. */
    body_as("application/json", "{\"email\":\"x\",\"Annegret\":\"y\"}");
    CHECK_INT(R.nfindings, 0);
}

/* A cookie value is a session token by its randomness only when letters are a good share of it:
 * analytics ids are dotted numbers under a short tag. */
static void test_cookie_analytics_ids(void)
{
    reset_headers();
    add_header("Cookie", "_ga=GA1.2.292694077.1609636969; _fbp=fb.1.1700000000000.1234567890; lang=fr");
    classify_full("/", NULL, 0, false);
    CHECK_INT(count("session_cookie"), 0);
    reset_headers();
    add_header("Cookie", "x=9loPRSpLCgK1vyVBNSUlj1q3DgzJyMLj; y=3b1f9c2e7a6d4b0c8e5f3b1f9c2e7a6d");
    classify_full("/", NULL, 0, false);
    CHECK_INT(count("session_cookie"), 2);
}

static void test_headers(void)
{
    reset_headers();
    add_header("Host", "api.example.com");
    add_header("Content-Type", "application/json");
    add_header("Accept", "*/*");
    add_header("X-Request-Id", "620476c1-43ad-4d5c-a7a6-c5780eb765ef");
    add_header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.5807.148");
    add_header("X-Forwarded-For", "191.239.0.215, dbab:4dfa:d0fe:daee:cd91:4aa9:5fbf:bebc");
    add_header("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N");
    add_header("Cookie", "theme=dark; session_id=qtlNekstvfIPNzYHavPJ03RlmBhjMhzR6dNA7L0N9vR; lang=en");
    add_header("X-Api-Key", "abc123def456");
    add_header("X-Device-Id", "47:25:09:1f:4b:5a");
    add_header("If-None-Match", "W/\"c004d331afd175ef287222db18417bc2d37f1d5f\"");
    classify_full(NULL, NULL, 0, false);
    CHECK_INT(count("user_agent"), 1);
    CHECK_INT(nth("user_agent", 0)->header, 4);
    CHECK_STR(nth("user_agent", 0)->path, "User-Agent");
    CHECK_INT(count("client_ip"), 2);
    CHECK_INT(nth("client_ip", 0)->offset, 0);
    CHECK_INT(nth("client_ip", 0)->length, 13);
    CHECK_INT(nth("client_ip", 1)->offset, 15);
    CHECK_INT(nth("client_ip", 1)->length, 39);
    CHECK_INT(count("jwt"), 1);
    CHECK_INT(nth("jwt", 0)->offset, 7);
    CHECK_INT(count("session_cookie"), 1);
    CHECK_INT(nth("session_cookie", 0)->offset, 23);
    CHECK_INT(nth("session_cookie", 0)->length, 43);
    CHECK_INT(count("api_key"), 1);
    CHECK_INT(count("mac_address"), 1);
    CHECK_INT(count("ip_address"), 0);
    CHECK_INT(count("device_id"), 0);
    CHECK_INT(R.nfindings, 7);
    CHECK_INT(R.body_kind, BG_BODY_NONE);
    /* Basic credentials and an opaque bearer token. */
    reset_headers();
    add_header("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
    classify_full(NULL, NULL, 0, false);
    CHECK_INT(count("bearer_token"), 1);
    CHECK_INT(nth("bearer_token", 0)->offset, 6);
}

static void test_path_and_query(void)
{
    const char *t = "/users/alice%40example.com/cards/4111111111111111?email=Judson.Ullrich%40hotmail.com"
                    "&lat=-67.95149&lng=89.0226&device_id=1c359fda-74b4-4f3c-9ff5-c2f462873e9a&v=19.16.4.139&page=9";
    reset_headers();
    classify_full(t, NULL, 0, false);
    const bg_finding_t *f = nth("email", 0);
    CHECK(f && f->where == BG_WHERE_PATH);
    CHECK_FOUND("email", t, "alice%40example.com");
    CHECK_INT(f ? f->encoded : 0, 1);
    CHECK_FOUND("card_number", t, "4111111111111111");
    f = nth("email", 1);
    CHECK(f && f->where == BG_WHERE_QUERY);
    if (f) {
        CHECK_SPAN(t + f->offset, f->length, "Judson.Ullrich%40hotmail.com");
        CHECK_STR(f->path, "email");
    }
    CHECK_INT(count("coordinates"), 2);
    CHECK_INT(count("device_id"), 1);
    CHECK_INT(count("ip_address"), 0);
    CHECK_INT(R.nfindings, 6);
}

static void test_form(void)
{
    const char *b = "name=Giovanna+Casper&email=Gino_Dare%40gmail.com&phone=%2B13296548251&ssn=183-62-1047"
                    "&newsletter=on&csrf_token=9loPRSpLCgK1vyVBNSUlj1q3DgzJyMLj";
    body_as("application/x-www-form-urlencoded", b);
    CHECK_INT(R.body_kind, BG_BODY_FORM);
    CHECK_FOUND("person_name", b, "Giovanna+Casper");
    CHECK_INT(nth("person_name", 0)->encoded, 1);
    CHECK_FOUND("email", b, "Gino_Dare%40gmail.com");
    CHECK_FOUND("phone", b, "%2B13296548251");
    CHECK_FOUND("us_ssn", b, "183-62-1047");
    CHECK_INT(R.nfindings, 4);
    body_as("application/x-www-form-urlencoded", "q=abscido+verto&page=5&filter=in_stock&color=%2388e174");
    CHECK_INT(R.nfindings, 0);
}

/* A query or form value that is base64 of JSON (analytics "track?data=…") is decoded and read: its
 * findings lie over the whole value (sealed whole). Not a JWT (it has its own detector), not
 * base64 of something else, not plain JSON-less base64. */
static void test_base64_json_params(void)
{
    /* {"event":"signup","properties":{"$email":"ann.lee@example.com","plan":"pro"}} */
    const char *q = "/track?data=eyJldmVudCI6InNpZ251cCIsInByb3BlcnRpZXMiOnsiJGVtYWlsIjoiYW5uLmxlZUBleGFtcGxlLmNvbSIsInBsYW4iOiJwcm8ifX0%3D&v=2";
    reset_headers();
    classify_full(q, NULL, 0, false);
    CHECK_INT(R.nfindings, 1);
    CHECK(R.categories & (1u << BG_CAT_IDENTIFIER));
    CHECK_FOUND("email", q, "eyJldmVudCI6InNpZ251cCIsInByb3BlcnRpZXMiOnsiJGVtYWlsIjoiYW5uLmxlZUBleGFtcGxlLmNvbSIsInBsYW4iOiJwcm8ifX0%3D");
    CHECK_INT(nth("email", 0)->where, BG_WHERE_QUERY);
    CHECK(nth("email", 0)->encoded);
    /* The same in a form body, base64url, with an IP and a phone: one finding, both categories. */
    /* {"ip":"203.0.113.9","phone":"+14155550123"} */
    body_as("application/x-www-form-urlencoded", "d=eyJpcCI6IjIwMy4wLjExMy45IiwicGhvbmUiOiIrMTQxNTU1NTAxMjMifQ&x=1");
    CHECK_INT(R.nfindings, 1);
    CHECK(R.categories & (1u << BG_CAT_DEVICE));
    CHECK(R.categories & (1u << BG_CAT_IDENTIFIER));
    /* Base64 JSON without personal data; base64 of text; a JWT (a credential, as before). */
    reset_headers();
    classify_full("/track?data=eyJldmVudCI6InZpZXciLCJwYWdlIjoiL2hvbWUifQ==", NULL, 0, false);
    CHECK_INT(R.nfindings, 0);
    classify_full("/x?data=aGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IEpTT04=", NULL, 0, false);
    CHECK_INT(R.nfindings, 0);
    classify_full("/x?t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", NULL, 0, false);
    CHECK_INT(count("jwt"), 1);
    CHECK_INT(R.nfindings, 1);
}

/* Standard base64 of s, appended to out (the nesting test builds its bodies with it). */
static void b64_append(bg_buf_t *out, const char *s, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)s[i] << 16 | (i + 1 < n ? (uint32_t)(unsigned char)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? (unsigned char)s[i + 2] : 0);
        char q[4] = {a[v >> 18], a[v >> 12 & 63], i + 1 < n ? a[v >> 6 & 63] : '=', i + 2 < n ? a[v & 63] : '='};
        bg_buf_append(out, q, 4);
    }
}

/* {"d":"<base64 of inner>"}, depth times over {"mail":"ann.lee@example.com"}. */
static void nested_b64(bg_buf_t *out, int depth)
{
    bg_buf_t in;
    bg_buf_init(&in);
    bg_buf_puts(&in, "{\"mail\":\"ann.lee@example.com\"}");
    for (int d = 0; d < depth; d++) {
        bg_buf_reset(out);
        bg_buf_puts(out, "{\"d\":\"");
        b64_append(out, in.data, in.len);
        bg_buf_puts(out, "\"}");
        bg_buf_reset(&in);
        bg_buf_append(&in, out->data, out->len);
    }
    bg_buf_dispose(&in);
}

/* Base64-JSON is read wherever a value is: in a JSON string (stream and queue APIs: Kinesis "Data",
 * Pub/Sub "data"), a header, a cookie and a path segment, as in query and form parameters. */
static void test_base64_json_elsewhere(void)
{
    /* {"mail":"flq@bbhv.de"}: not one byte a detector could start on (text_quick_skip's candidate
     * set) in its base64, so the walk's quick skip must not wave it through; beside it base64-JSON
     * without personal data. */
    const char *b = "{\"Data\":\"eyJtYWlsIjoiZmxxQGJiaHYuZGUifQ\",\"n\":\"eyJub3RlIjoiaGVsbG8ifQ\"}";
    body_as("application/json", b);
    CHECK_INT(R.nfindings, 1);
    CHECK_FOUND("email", b, "eyJtYWlsIjoiZmxxQGJiaHYuZGUifQ");
    CHECK(!nth("email", 0)->encoded);
    /* An encoder that escapes '/' as "\/": the finding covers the raw (escaped) bytes. */
    b = "{\"records\":[{\"data\":\"eyJlbWFpbCI6ImFubi5sZWVAZXhhbXBsZS5jb20iLCJxIjoiPz8\\/PiJ9\"}]}";
    body_as("application/json", b);
    CHECK_INT(R.nfindings, 1);
    CHECK_FOUND("email", b, "eyJlbWFpbCI6ImFubi5sZWVAZXhhbXBsZS5jb20iLCJxIjoiPz8\\/PiJ9");
    CHECK(nth("email", 0)->encoded);
    /* Header, cookie (a session kept in the cookie: its categories join the session finding's
     * covers), path segment (base64url, unpadded). {"user":{"phone":"+14155550123"}} */
    reset_headers();
    add_header("X-Context", "eyJ1c2VyIjp7InBob25lIjoiKzE0MTU1NTUwMTIzIn19");
    add_header("Cookie", "theme=dark; st=eyJ1c2VyIjp7InBob25lIjoiKzE0MTU1NTUwMTIzIn19");
    classify_full("/v1/e/eyJ1c2VyIjp7InBob25lIjoiKzE0MTU1NTUwMTIzIn19/x", NULL, 0, false);
    CHECK_INT(count("phone"), 2);
    CHECK_INT(nth("phone", 0)->where, BG_WHERE_HEADER);
    CHECK_INT(nth("phone", 1)->where, BG_WHERE_PATH);
    const bg_finding_t *f = nth("session_cookie", 0);
    CHECK(f != NULL);
    CHECK(f && (f->covers & (1u << BG_CAT_IDENTIFIER)));
    CHECK_INT(R.nfindings, 3);
    /* Nesting: four levels are read; a fifth is not decoded, and the request is unscannable
     * rather than passed unread. */
    bg_buf_t nb;
    bg_buf_init(&nb);
    nested_b64(&nb, 4);
    reset_headers();
    add_header("Content-Type", "application/json");
    classify_full(NULL, nb.data, nb.len, false);
    CHECK_INT(count("email"), 1);
    CHECK(!R.unscannable);
    nested_b64(&nb, 5);
    classify_full(NULL, nb.data, nb.len, false);
    CHECK(R.unscannable);
    CHECK(R.unscannable_reason && strcmp(R.unscannable_reason, "encoding_too_deep") == 0);
    bg_buf_dispose(&nb);
    /* Base64 of JSON in a JSON string that is not all base64 is text, as before. */
    body_as("application/json", "{\"note\":\"eyJ is how base64 of an object starts\"}");
    CHECK_INT(R.nfindings, 0);
    CHECK(!R.unscannable);
}

static void test_multipart(void)
{
    const char *b = "--XyZ\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nann@example.com\r\n"
                    "--XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"cv.pdf\"\r\n"
                    "Content-Type: application/pdf\r\n\r\n%PDF-1.4 binary\r\n--XyZ--\r\n";
    body_as("multipart/form-data; boundary=XyZ", b);
    CHECK_INT(R.body_kind, BG_BODY_MULTIPART);
    CHECK(!R.unscannable);
    CHECK_FOUND("email", b, "ann@example.com");
    CHECK_STR(nth("email", 0)->path, "email");
    CHECK_FOUND("file_upload", b, "%PDF-1.4 binary");
    CHECK_STR(nth("file_upload", 0)->path, "doc");
    CHECK(R.categories & (1u << BG_CAT_CONTENT));
    CHECK_INT(R.categories, (1u << BG_CAT_CONTENT) | (1u << BG_CAT_IDENTIFIER)); /* the PDF holds nothing */
    /* A file is read too: an uploaded customer list is identifiers, not only content. What is
     * inside lies under the file's one finding (one finding per byte, for sealing): its covers. */
    const char *csv = "--XyZ\r\nContent-Disposition: form-data; name=\"list\"; filename=\"customers.csv\"\r\n"
                      "Content-Type: text/csv\r\n\r\nname,email\r\nAnn Lee,ann.lee@example.com\r\n--XyZ--\r\n";
    body_as("multipart/form-data; boundary=XyZ", csv);
    CHECK_INT(R.nfindings, 1);
    CHECK_FOUND("file_upload", csv, "name,email\r\nAnn Lee,ann.lee@example.com");
    CHECK(R.categories & (1u << BG_CAT_IDENTIFIER));
    CHECK(R.categories & (1u << BG_CAT_CONTENT));
    CHECK(nth("file_upload", 0)->covers & (1u << BG_CAT_IDENTIFIER));
    /* A binary part is read with the binary caution (no short compressed IPv6 forms), and the
     * PDF above holds nothing: content alone. */
    CHECK(!(R.categories & (1u << BG_CAT_DEVICE)));
    body_as("multipart/form-data; boundary=XyZ",
            "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n\x01\x02 3::e 1::2 \xff\r\n--XyZ--\r\n");
    CHECK_INT(R.categories, 1u << BG_CAT_CONTENT);
    body_as("multipart/form-data; boundary=XyZ", "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end");
    CHECK(R.unscannable);
    CHECK_STR(R.unscannable_reason, "malformed_multipart");
    body_as("multipart/form-data", "--XyZ\r\n\r\n");
    CHECK_STR(R.unscannable_reason, "malformed_multipart");
}

static void test_other_bodies(void)
{
    /* A type the classifier has no reader for is still read as text: a label does not carry
     * personal data past the detectors. */
    body_as("application/octet-stream", "4111111111111111 ann@example.com");
    CHECK_INT(R.body_kind, BG_BODY_OTHER);
    CHECK_INT(R.nfindings, 2);
    CHECK_INT(count("email"), 1);
    CHECK(!R.unscannable);
    /* A protobuf message holds its strings verbatim between length bytes. */
    static const char pb[] = "\x0a\x03" "Ann" "\x12\x0f" "ann@example.com" "\x18\x96\x01";
    reset_headers();
    add_header("Content-Type", "application/x-protobuf");
    classify_full(NULL, pb, sizeof pb - 1, false);
    CHECK_FOUND("email", pb, "ann@example.com");
    /* JSON under a binary label is read as JSON: the key-context detectors see it too. */
    body_as("image/png", "{\"first_name\":\"Audie\",\"note\":\"x\"}");
    CHECK_INT(R.body_kind, BG_BODY_OTHER);
    CHECK_INT(count("person_name"), 1);
    CHECK(!R.unscannable);
    /* Malformed JSON under a binary label: text, not unscannable. */
    body_as("application/octet-stream", "{\"a\": ann@example.com");
    CHECK_INT(count("email"), 1);
    CHECK(!R.unscannable);
    /* Noise: 1 MiB of pseudo-random bytes (what compressed images and archives look like) finds
     * nothing. */
    size_t nn = 1u << 20;
    char *noise = malloc(nn);
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < nn; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise[i] = (char)(x >> 32);
    }
    reset_headers();
    add_header("Content-Type", "image/jpeg");
    classify_full(NULL, noise, nn, false);
    CHECK_INT(R.nfindings, 0);
    CHECK(!R.unscannable);
    free(noise);
    reset_headers();
    add_header("Content-Type", "application/json");
    add_header("Content-Encoding", "br");
    classify_full(NULL, "xx", 2, false);
    CHECK(R.unscannable);
    CHECK_STR(R.unscannable_reason, "unknown_encoding");
    /* A body cut at max_body_scan. */
    reset_headers();
    add_header("Content-Type", "application/json");
    bg_classify_input_t in = {H, NH, NULL, 0, "{\"a\":", 5, true, false, 0, false};
    CHECK_INT(bg_classify(C, &in, &R), 0);
    CHECK(R.unscannable);
    CHECK_STR(R.unscannable_reason, "body_too_large");
}

/* ---------------------------------------------------------------- gzip */

static size_t gz(const char *in, size_t n, unsigned char *out, size_t cap, int wbits)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 9, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    return len;
}

static void test_gzip(void)
{
    const char *plain = "{\"contact\":{\"email\":\"zoe@example.org\"}}";
    unsigned char buf[4096];
    size_t n = gz(plain, strlen(plain), buf, sizeof buf, 15 + 16);
    reset_headers();
    add_header("Content-Type", "application/json");
    add_header("Content-Encoding", "gzip");
    classify_full(NULL, (const char *)buf, n, false);
    CHECK(!R.unscannable);
    CHECK(R.body_inflated);
    CHECK_INT(R.inflated.len, strlen(plain));
    CHECK_FOUND("email", R.inflated.data, "zoe@example.org");
    CHECK_INT(nth("email", 0)->offset, 21);
    /* deflate = zlib framing; raw deflate is accepted too. */
    H[1].value = "deflate";
    H[1].value_len = 7;
    n = gz(plain, strlen(plain), buf, sizeof buf, 15);
    classify_full(NULL, (const char *)buf, n, false);
    CHECK_INT(count("email"), 1);
    n = gz(plain, strlen(plain), buf, sizeof buf, -15);
    classify_full(NULL, (const char *)buf, n, false);
    CHECK_INT(count("email"), 1);
    /* Truncated and corrupt streams. */
    H[1].value = "gzip";
    H[1].value_len = 4;
    n = gz(plain, strlen(plain), buf, sizeof buf, 15 + 16);
    classify_full(NULL, (const char *)buf, n / 2, false);
    CHECK(R.unscannable);
    CHECK_STR(R.unscannable_reason, "truncated_gzip");
    classify_full(NULL, "not gzip at all", 15, false);
    CHECK(R.unscannable);
    CHECK_STR(R.unscannable_reason, "malformed_gzip");
    /* Two gzip members: the second is scanned too (decoders concatenate them). */
    const char *p1 = "{\"a\":\"x\",", *p2 = "\"b\":\"ann@example.com\"}";
    n = gz(p1, strlen(p1), buf, sizeof buf, 15 + 16);
    n += gz(p2, strlen(p2), buf + n, sizeof buf - n, 15 + 16);
    classify_full(NULL, (const char *)buf, n, false);
    CHECK(!R.unscannable);
    CHECK_INT(R.inflated.len, strlen(p1) + strlen(p2));
    CHECK_INT(count("email"), 1);
    /* Garbage after a deflate stream is not ignored. */
    H[1].value = "deflate";
    H[1].value_len = 7;
    n = gz(plain, strlen(plain), buf, sizeof buf, 15);
    memcpy(buf + n, "TRAILING", 8);
    classify_full(NULL, (const char *)buf, n + 8, false);
    CHECK(R.unscannable);
    CHECK_STR(R.unscannable_reason, "malformed_gzip");
    /* A declared binary type is inflated and read too: a compressed label hides nothing. */
    H[0].value = "application/octet-stream";
    H[0].value_len = 24;
    H[1].value = "gzip";
    H[1].value_len = 4;
    const char *bin = "\x01\x02zoe@example.org\x00\x03";
    n = gz(bin, 20, buf, sizeof buf, 15 + 16);
    classify_full(NULL, (const char *)buf, n, false);
    CHECK(!R.unscannable);
    CHECK(R.body_inflated);
    CHECK_INT(R.body_kind, BG_BODY_OTHER);
    CHECK_INT(count("email"), 1);
    classify_full(NULL, "\x89PNG garbage", 12, false);
    CHECK(R.unscannable);
    CHECK_STR(R.unscannable_reason, "malformed_gzip");
}

static void test_zip_bomb(void)
{
    size_t big = 64u << 20; /* 64 MiB of zeros compress to ~64 KiB */
    char *zeros = calloc(1, big);
    size_t cap = big / 100;
    unsigned char *buf = malloc(cap);
    size_t n = gz(zeros, big, buf, cap, 15 + 16);
    CHECK(n < 200000);
    reset_headers();
    add_header("Content-Type", "application/json");
    add_header("Content-Encoding", "gzip");
    bg_classify_input_t in = {H, NH, NULL, 0, (const char *)buf, n, false, false, 1u << 20, false};
    CHECK_INT(bg_classify(C, &in, &R), 0);
    CHECK(R.unscannable);
    CHECK_STR(R.unscannable_reason, "inflate_limit");
    CHECK(R.inflated.len <= (1u << 20) + 1);
    in.max_inflate = 0; /* default bound: 16 MiB */
    CHECK_INT(bg_classify(C, &in, &R), 0);
    CHECK_STR(R.unscannable_reason, "inflate_limit");
    free(zeros);
    free(buf);
}

/* ---------------------------------------------------------------- limits, config */

static void test_findings_cap(void)
{
    size_t k = 2000;
    char *b = malloc(k * 20 + 1);
    size_t o = 0;
    for (size_t i = 0; i < k; i++)
        o += (size_t)sprintf(b + o, "u%04zu@example.com ", i);
    body_as("text/plain", b);
    CHECK_INT(R.nfindings, BG_MAX_FINDINGS);
    CHECK(R.findings_truncated);
    CHECK_INT(count("email"), k);
    free(b);
}

static void test_detector_table(void)
{
    CHECK_INT(bg_classifier_ndetectors(C), BG_DET__BUILTIN);
    CHECK_STR(bg_classifier_detector_name(C, 0), "email");
    CHECK_STR(bg_classifier_detector_name(C, BG_DET_FILE_UPLOAD), "file_upload");
    CHECK_INT(bg_classifier_detector_category(C, BG_DET_CARD_NUMBER), BG_CAT_FINANCIAL);
    CHECK_INT(bg_classifier_detector_category(C, BG_DET_AI_PROMPT), BG_CAT_AI_INTERACTION);
    CHECK(bg_classifier_detector_name(C, 999) == NULL);
    CHECK_INT(bg_classifier_detector_category(C, 999), -1);
}

static void test_config_custom_and_lists(void)
{
    bg_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    char *keys[] = {"customer_no", "cust_id"};
    /* Keys and a prefix: only values under the keys. A prefix alone: anywhere in text. */
    bg_custom_detector_t cd[2] = {{"customer_number", BG_CAT_IDENTIFIER, keys, 2, "CUST-", 8},
                                  {"employee_id", BG_CAT_IDENTIFIER, NULL, 0, "EMP-", 6}};
    char *list[] = {"email", "customer_number", "employee_id"};
    cfg.classification.all = false;
    cfg.classification.detectors = list;
    cfg.classification.ndetectors = 3;
    cfg.classification.custom = cd;
    cfg.classification.ncustom = 2;
    char err[128] = "";
    bg_classifier_t *c = bg_classifier_create(&cfg, err, sizeof err);
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_INT(bg_classifier_ndetectors(c), BG_DET__BUILTIN + 2);
    CHECK_STR(bg_classifier_detector_name(c, BG_DET__BUILTIN), "customer_number");
    bg_classification_t r;
    bg_classification_init(&r, c);
    const char *b = "{\"cust_id\":\"CUST-12345678\",\"other\":\"see CUST-87654321, EMP-123456 and EMP-1\",\"email\":\"a@b.example\","
                    "\"phone\":\"+14155550132\"}";
    bg_header_t h = {"Content-Type", 12, "application/json", 16};
    bg_classify_input_t in = {&h, 1, NULL, 0, b, strlen(b), false, false, 0, false};
    CHECK_INT(bg_classify(c, &in, &r), 0);
    CHECK_INT(r.counts[BG_DET__BUILTIN], 1);
    CHECK_INT(r.counts[BG_DET__BUILTIN + 1], 1);
    CHECK_INT(r.counts[BG_DET_EMAIL], 1);
    CHECK_INT(r.counts[BG_DET_PHONE], 0); /* not in the list: disabled */
    CHECK_INT(r.nfindings, 3);
    CHECK_INT(r.categories, 1u << BG_CAT_IDENTIFIER);
    if (r.nfindings)
        CHECK_SPAN(b + r.findings[0].offset, r.findings[0].length, "CUST-12345678");
    bg_classification_dispose(&r);
    bg_classifier_destroy(c);
    char *badlist[] = {"email", "no_such_detector", "x"};
    cfg.classification.detectors = badlist;
    c = bg_classifier_create(&cfg, err, sizeof err);
    CHECK(c == NULL);
    CHECK(strstr(err, "no_such_detector") != NULL);
}

/* ---------------------------------------------------------------- fast paths (issue 5 performance) */

/* The candidate-byte pre-pass and the short-number skip must not hide what the full scan finds. */
static void test_fast_paths_text(void)
{
    const char *s = "id AKIAABCDEFGHIJKLMNOPabc end"; /* a key of letters only: no digit, no separator */
    text(s);
    CHECK_FOUND("api_key", s, "AKIAABCDEFGHIJKLMNOPabc");
    s = "router abcd.efab.cdef up"; /* a MAC of hex letters, Cisco dots */
    text(s);
    CHECK_FOUND("mac_address", s, "abcd.efab.cdef");
    s = "PHONE 040 379 2455"; /* keyword context, upper case */
    text(s);
    CHECK_FOUND("phone", s, "040 379 2455");
    /* Plain words and short numbers: nothing, with or without the fast paths. */
    body_as("application/json", "{\"a\":\"12.34\",\"b\":100001,\"c\":\"1.2.3\",\"d\":\"-7\",\"e\":\"hello world\",\"f\":-0.5}");
    CHECK_INT(R.nfindings, 0);
    CHECK_INT(R.categories, 0);
    /* ... but seven digits and three dots are looked at. */
    s = "{\"x\":\"10.0.0.1\",\"y\":4111111111111111}";
    body_as("application/json", s);
    CHECK_FOUND("ip_address", s, "10.0.0.1");
    CHECK_FOUND("card_number", s, "4111111111111111");
    s = "{\"note\":\"call me: 415.555.2671\"}";
    body_as("application/json", s);
    CHECK_FOUND("phone", s, "415.555.2671");
}

/* The per-call key cache: many distinct keys (the cache overflows), long keys (compared byte by
 * byte), escaped keys, and the same key found again after all of them. */
static void test_fast_paths_keys(void)
{
    char *b = malloc(64 * 1024);
    CHECK(b != NULL);
    if (!b)
        return;
    size_t o = 0;
    o += (size_t)sprintf(b + o, "{\"first_name\":\"Ann\",\"customer_primary_phone_number\":\"4155552671\"");
    for (int i = 0; i < 600; i++)
        o += (size_t)sprintf(b + o, ",\"key_%d\":\"v\"", i);
    o += (size_t)sprintf(b + o, ",\"a_very_long_key_name_for_the_cache_phone\":\"4155552671\""
                                ",\"customer_primary_phone_number\":\"4155552672\",\"first_name\":\"Bea\""
                                ",\"\\u0066irst_name\":\"Cid\",\"item\":{\"sku\":\"X-1\",\"name\":\"Steel Chair\"}}");
    body_as("application/json", b);
    CHECK(!R.unscannable);
    CHECK_INT(count("phone"), 3);
    CHECK_INT(count("person_name"), 3);
    const bg_finding_t *f = nth("phone", 2);
    CHECK(f != NULL);
    if (f)
        CHECK_STR(f->path, "$.customer_primary_phone_number");
    f = nth("person_name", 2);
    if (f)
        CHECK_SPAN(b + f->offset, f->length, "Cid");
    free(b);
}

/* The shape pre-filters (UUID, ISO-8601 timestamp, bare integer, SKU-style code) skip only what
 * finds nothing: their look-alikes that are personal data are still found. */
static void test_fast_paths_shapes(void)
{
    /* The shapes themselves, as strings and numbers under neutral keys: nothing. */
    body_as("application/json", "{\"request_id\":\"620476c1-43ad-4d5c-a7a6-c5780eb765ef\","
                                "\"r2\":\"ab12cdef-43ad-4d5c-a7a6-c5780eb765ef\",\"created_at\":\"2026-11-29T12:34:56.789Z\","
                                "\"t2\":\"2026-11-29T12:34:56.123456789+01:00\",\"t3\":\"2026-11-29T12:34:56-05:00\","
                                "\"ms\":1700000000000,\"ms2\":\"1700000000000\",\"sku\":\"SKU-00042\",\"big\":12345678901234567890}");
    CHECK_INT(R.nfindings, 0);
    CHECK_INT(R.categories, 0);
    /* A 13-digit Visa number (digits only, as number and as string) is still a card. */
    const char *s = "{\"n\":4222222222222}";
    body_as("application/json", s);
    CHECK_FOUND("card_number", s, "4222222222222");
    s = "{\"n\":\"4222222222222\"}";
    body_as("application/json", s);
    CHECK_FOUND("card_number", s, "4222222222222");
    /* A UUID whose first groups pass as a Belgian IBAN (16 characters, mod 97) is a UUID
     * (test_iban_not_in_uuid): scanned or skipped, it finds nothing; one group more and it is
     * no UUID, and the IBAN is read. */
    s = "{\"id\":\"BE685390-0754-7034-abcd-0123456789ab\"}";
    body_as("application/json", s);
    CHECK_INT(count("iban"), 0);
    s = "{\"x\":\"BE30A1B2-C3D4-E5F6-ABCD-0123ABCD4567\"}"; /* short digit runs: the shape rule asks iban_at */
    body_as("application/json", s);
    CHECK_INT(count("iban"), 0);
    s = "{\"x\":\"BE30A1B2-C3D4-E5F6-ABCD-0123ABCD4567-89AB\"}";
    body_as("application/json", s);
    CHECK_FOUND("iban", s, "BE30A1B2-C3D4-E5F6");
    /* A UUID with a long run of digits is scanned (a 12-digit group can hold a card; under a
     * neutral key: "id" is an identifier number, where cards are not looked for). */
    s = "{\"x\":\"aaaaaaaa-bbbb-cccc-dddd-501800000009\"}";
    body_as("application/json", s);
    CHECK_INT(count("card_number"), 1);
    /* A timestamp next to a phone keyword is still not a phone; a phone is. */
    s = "{\"note\":\"phone 2026-11-29T12:34:56Z\",\"tel_at\":\"+14155552671\"}";
    body_as("application/json", s);
    CHECK_INT(count("phone"), 1);
}

/* The memo of values that found nothing compares a 17..32-byte value's middle as well as its
 * fingerprint: a value with the same length and the same first and last eight bytes but an
 * e-mail in the middle is scanned, at each middle position the compare covers. */
static void test_memo_middle(void)
{
    /* "standard" ... "wrap: no": the ':' makes it a value the memo keeps (text_quick_skip says no). */
    static const char *const mids[][2] = {
        {" shipping, gift ", " x ann@ex.io x  "}, /* 32 bytes */
        {" shipping, gi", " ann@ex.io   "},       /* 29 */
        {" shipping,  ", "   ann@ex.io"},         /* 28: the e-mail ends where the tail starts */
        {" shipp ", " a@b.io"},                   /* 23 */
    };
    for (size_t i = 0; i < sizeof mids / sizeof mids[0]; i++) {
        char b[256];
        snprintf(b, sizeof b, "{\"a\":\"standard%swrap: no\",\"b\":\"standard%swrap: no\"}", mids[i][0],
                 mids[i][1]);
        body_as("application/json", b);
        CHECK_INT(count("email"), 1);
        const bg_finding_t *f = nth("email", 0);
        CHECK(f != NULL);
        if (f)
            CHECK_STR(f->path, "$.b");
    }
}

/* The findings array starts small and grows: a fresh classification per size around each
 * growth step keeps every finding in order with its span and path, up to the bound; the same
 * classification reused for a smaller body after a large one starts over. */
static void test_findings_growth(void)
{
    static const size_t ks[] = {0, 1, 10, 11, 12, 43, 44, 45, 176, 177, 704, 705, 1023, 1024, 1025, 1300};
    char *b = malloc(1300 * 24 + 16);
    CHECK(b != NULL);
    if (!b)
        return;
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        size_t k = ks[t], o = 0;
        o += (size_t)sprintf(b + o, "[");
        for (size_t i = 0; i < k; i++)
            o += (size_t)sprintf(b + o, "%s\"u%04zu@example.com\"", i ? "," : "", i);
        sprintf(b + o, "]");
        bg_classification_t r;
        bg_classification_init(&r, C);
        bg_header_t ct = {"Content-Type", 12, "application/json", 16};
        bg_classify_input_t in = {&ct, 1, NULL, 0, b, strlen(b), false, false, 0, false};
        for (int pass = 0; pass < 2; pass++) { /* the second pass reuses the grown array */
            CHECK_INT(bg_classify(C, &in, &r), 0);
            size_t want = k < BG_MAX_FINDINGS ? k : BG_MAX_FINDINGS;
            CHECK_INT(r.nfindings, want);
            CHECK(r.findings_truncated == (k > BG_MAX_FINDINGS));
            CHECK_INT(r.counts[det("email")], k);
            CHECK(r.findings_cap >= r.nfindings && r.findings_cap <= BG_MAX_FINDINGS);
            for (size_t i = 0; i < r.nfindings; i++) {
                char want_v[48], want_p[48];
                sprintf(want_v, "u%04zu@example.com", i);
                sprintf(want_p, "$[%zu]", i);
                if (r.findings[i].detector != det("email") || r.findings[i].length != strlen(want_v) ||
                    memcmp(b + r.findings[i].offset, want_v, strlen(want_v)) != 0 ||
                    strcmp(r.findings[i].path, want_p) != 0) {
                    bg_test_fail(__FILE__, __LINE__, "k=%zu finding %zu wrong", k, i);
                    break;
                }
            }
        }
        if (k == 1300) { /* a small body after a large one, same classification */
            in.body = "[\"a@example.com\"]";
            in.body_len = strlen(in.body);
            CHECK_INT(bg_classify(C, &in, &r), 0);
            CHECK_INT(r.nfindings, 1);
            CHECK(!r.findings_truncated);
        }
        bg_classification_dispose(&r);
        CHECK(r.findings == NULL && r.counts == NULL && r.findings_cap == 0);
    }
    free(b);
}

/* The JSON walk's memo of values that found nothing: a repeat is skipped only when its bytes
 * and its key's flags are the same. Values that find something are found at every repeat; the
 * same bytes under a key that changes the rules, and a value sharing the memo's fingerprint
 * (length, first and last eight bytes) but not its middle, are scanned again. */
static void test_fast_paths_repeats(void)
{
    char *b = malloc(64 * 1024);
    CHECK(b != NULL);
    if (!b)
        return;
    size_t o = 0;
    o += (size_t)sprintf(b + o, "{\"items\":[");
    for (int i = 0; i < 200; i++)
        o += (size_t)sprintf(b + o, "%s{\"note\":\"standard shipping, gift wrap: no\",\"mail\":\"ann@example.com\","
                                    "\"ref\":\"ORD-2026-000123\"}", i ? "," : "");
    o += (size_t)sprintf(b + o, "]}");
    body_as("application/json", b);
    CHECK(!R.unscannable);
    CHECK_INT(count("email"), 200);
    CHECK_INT(R.nfindings, 200);
    const bg_finding_t *f = nth("email", 199);
    CHECK(f != NULL);
    if (f) {
        CHECK_SPAN(b + f->offset, f->length, "ann@example.com");
        CHECK_STR(f->path, "$.items[199].mail");
    }
    /* The same bytes under "version" (no IP there) and then under "note" (an IP). */
    const char *s = "{\"version\":\"host 10.20.30.40 ok\",\"note\":\"host 10.20.30.40 ok\"}";
    body_as("application/json", s);
    CHECK_INT(count("ip_address"), 1);
    f = nth("ip_address", 0);
    if (f)
        CHECK_INT(f->offset, (long)(strstr(s, "note") - s + 7 + 5)); /* after note":" and "host " */
    /* Same length, same first and last eight bytes, a different middle. */
    s = "{\"a\":\"standard shipping: aaaaaaaaaaa gift wrap\",\"b\":\"standard shipping: 10.20.30.40 gift wrap\","
        "\"c\":\"standard shipping: aaaaaaaaaaa gift wrap\"}";
    body_as("application/json", s);
    CHECK_INT(count("ip_address"), 1);
    CHECK_FOUND("ip_address", s, "10.20.30.40");
    /* Short values (the fingerprint is the value): "1.2.3.4" found each time, "1.2.3:4" never. */
    s = "{\"a\":\"x 1.2.3:4\",\"b\":\"x 1.2.3.4\",\"c\":\"x 1.2.3:4\",\"d\":\"x 1.2.3.4\"}";
    body_as("application/json", s);
    CHECK_INT(count("ip_address"), 2);
    free(b);
}

/* Common header names (precomputed key rules) and cookies. */
static void test_fast_paths_headers(void)
{
    reset_headers();
    add_header("X-Request-Id", "620476c1-43ad-4d5c-a7a6-c5780eb765ef");
    add_header("Cache-Control", "no-cache");
    add_header("Accept-Language", "en-GB,en;q=0.9");
    add_header("X-Phone", "+14155552671");
    add_header("Cookie", "theme=dark; sessionid=abcdefgh12345678; csrftoken=abcdefgh12345678");
    classify_full("/v2/orders?page=2&per_page=50&sort=-created_at&tel=%2B14155552671", NULL, 0, false);
    CHECK_INT(count("phone"), 2);
    CHECK_INT(count("session_cookie"), 1);
    CHECK_INT(count("device_id"), 0);
    const bg_finding_t *f = nth("session_cookie", 0);
    CHECK(f != NULL);
    if (f)
        CHECK_SPAN(H[4].value + f->offset, f->length, "abcdefgh12345678");
}

/* The classifier's table of common raw key spellings (filled at create) gives the rules the
 * per-call path computes: a spelling in it and one not in it find the same; a custom detector's
 * key that is also a common spelling keeps its custom rule. */
/* email_around checks the local part itself (a last '.', two in a row, 64 bytes) and leaves
 * the domain to bg_detect_email_domain_valid: spans as before. */
static void test_email_spans(void)
{
    const char *s = "to -.ann.lee@example.com, a..b@example.com, c.@example.com, x..y.z@example.com";
    text(s);
    CHECK_INT(count("email"), 1);
    CHECK_FOUND("email", s, "ann.lee@example.com");
    char b[200];
    memset(b, 'a', 65);
    strcpy(b + 65, "@example.com and ");
    memset(b + 82, 'b', 64);
    strcpy(b + 146, "@example.com");
    text(b);
    CHECK_INT(count("email"), 1);
    const bg_finding_t *f = nth("email", 0);
    CHECK(f != NULL);
    if (f)
        CHECK_INT(f->offset, 82);
    /* Many e-mails in one value (the span list outgrows its first room, twice), each a start
     * the other detectors skip: a phone-like local part stays inside its e-mail. */
    char m[40 * 21 + 1];
    size_t o = 0;
    for (int i = 0; i < 40; i++)
        o += (size_t)snprintf(m + o, sizeof m - o, "+1415555%04d@ex.com, ", i);
    text(m);
    CHECK_INT(count("email"), 40);
    CHECK_INT(count("phone"), 0);
    for (int i = 0; i < 40; i++) {
        f = nth("email", i);
        CHECK(f != NULL);
        if (f)
            CHECK_INT(f->offset, 21 * i + 1); /* "+1415555NNNN@ex.com, ": the e-mail starts after the + */
    }
}

/* json_path keeps the path of the frames below the top while the top is on the stack: values
 * in one object, the next element of an array, a sibling after a nested object, a new object
 * at the same depth, and a prefix cut at 63 bytes all get the path written out in full. */
static void test_json_path_prefix(void)
{
    const char *b = "{\"a\":[{\"email\":\"x@example.com\",\"ip\":\"10.0.0.1\"},{\"b\":{\"email\":\"y@example.com\"},"
                    "\"email\":\"z@example.com\"},[\"v@example.com\",\"u@example.com\"]],\"c\":\"w@example.com\","
                    "\"d\":{\"email\":\"t@example.com\"},\"key_of_forty_bytes_xxxxxxxxxxxxxxxxxxxxxx\":{\"more\":"
                    "{\"email\":\"s@example.com\",\"deeper\":[1,\"r@example.com\"]}}}";
    body_as("application/json", b);
    static const char *const want[] = {"$.a[0].email", "$.a[1].b.email", "$.a[1].email", "$.a[2][0]", "$.a[2][1]",
                                       "$.c", "$.d.email", "$.key_of_forty_bytes_xxxxxxxxxxxxxxxxxxxxxx.more.email",
                                       "$.key_of_forty_bytes_xxxxxxxxxxxxxxxxxxxxxx.more.deeper[1]"};
    CHECK_INT(count("email"), 9);
    for (int i = 0; i < 9; i++) {
        const bg_finding_t *f = nth("email", i);
        CHECK(f != NULL);
        if (f)
            CHECK_STR(f->path, want[i]);
    }
    const bg_finding_t *f = nth("ip_address", 0);
    CHECK(f != NULL);
    if (f)
        CHECK_STR(f->path, "$.a[0].ip");
    char big[400];
    snprintf(big, sizeof big, "{\"%s\":{\"%s\":[\"q@example.com\",\"p@example.com\"]}}",
             "k123456789k123456789k123456789k123456789", "j123456789j123456789j123");
    body_as("application/json", big);
    CHECK_INT(count("email"), 2);
    f = nth("email", 1);
    CHECK(f != NULL);
    if (f)
        CHECK_STR(f->path, "$.k123456789k123456789k123456789k123456789.j123456789j123456789"); /* 63 bytes */
}

/* NINO prefixes never issued (BG GB NK KN TN NT ZZ) and the excluded letters are not NINOs;
 * their neighbours are. */
static void test_nino_prefixes(void)
{
    static const char *const no[] = {"BG123456A", "GB123456A", "NK123456A", "KN123456A", "TN123456A",
                                     "NT123456A", "ZZ123456A", "DA123456A", "AO123456A", "gb123456a"};
    static const char *const yes[] = {"BH123456A", "GA123456B", "NL123456C", "KM123456D", "TM123456A",
                                      "NS123456A", "ZY123456A", "ab123456c"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        text(no[i]);
        CHECK_INT(count("uk_nino"), 0);
    }
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        text(yes[i]);
        CHECK_INT(count("uk_nino"), 1);
    }
}

/* Values over 16 bytes: where the leading run of number bytes stops decides the shape rules;
 * a run longer than 16 bytes is counted byte by byte. */
static void test_fast_paths_long_values(void)
{
    const char *b = "{\"a\":\"4111-1111-1111-1111 x\",\"b\":\"2026-11-29T12:34:56Z\",\"c\":\"2026-11-29T12:34:56Z call "
                    "415-555-2671\",\"d\":\"12345678901234567890.5\",\"e\":\"1.2.3.4.5.6.7.8.9.10.11\","
                    "\"f\":\"+1-415-555-2671-0000-000\",\"g\":\"10.0.0.1 and 10.0.0.2\"}";
    body_as("application/json", b);
    CHECK_INT(count("card_number"), 1);
    CHECK_FOUND("card_number", b, "4111-1111-1111-1111");
    CHECK_INT(count("phone"), 1);
    CHECK_FOUND("phone", b, "415-555-2671");
    CHECK_INT(count("ip_address"), 2);
    CHECK_INT(R.nfindings, 4);
}

static void test_fast_paths_raw_keys(void)
{
    const char *b = "{\"first_name\":\"Ann\",\"firstName\":\"Bea\",\"FIRST_NAME\":\"Cid\",\"phone_number\":\"4155552671\","
                    "\"phoneNumber\":\"4155552672\",\"Phone-Number\":\"4155552673\",\"request_id\":\"4155552674\","
                    "\"requestID\":\"4155552675\",\"email\":\"a@b.example\"}";
    body_as("application/json", b);
    CHECK_INT(count("person_name"), 3);
    CHECK_INT(count("phone"), 3); /* the request ids are ids, in either spelling */
    CHECK_INT(count("email"), 1);
    reset_headers();
    add_header("x-forwarded-for", "203.0.113.7");
    add_header("X-Forwarded-For", "203.0.113.8");
    add_header("X-FORWARDED-FOR", "203.0.113.9");
    add_header("user-agent", "curl/8.0");
    add_header("User-Agent", "curl/8.0");
    classify_full("/", NULL, 0, false);
    CHECK_INT(count("client_ip"), 3);
    CHECK_INT(count("user_agent"), 2);
    bg_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    char *keys[] = {"user_id"};
    bg_custom_detector_t cd = {"member", BG_CAT_IDENTIFIER, keys, 1, "M-", 4};
    cfg.classification.all = true;
    cfg.classification.custom = &cd;
    cfg.classification.ncustom = 1;
    char err[128] = "";
    bg_classifier_t *c = bg_classifier_create(&cfg, err, sizeof err);
    CHECK(c != NULL);
    if (!c)
        return;
    bg_classification_t r;
    bg_classification_init(&r, c);
    const char *cb = "{\"user_id\":\"M-1234\",\"userId\":\"M-5678\",\"USER_ID\":\"M-9012\"}";
    bg_header_t h = {"Content-Type", 12, "application/json", 16};
    bg_classify_input_t in = {&h, 1, NULL, 0, cb, strlen(cb), false, false, 0, false};
    CHECK_INT(bg_classify(c, &in, &r), 0);
    CHECK_INT(r.counts[BG_DET__BUILTIN], 3);
    bg_classification_dispose(&r);
    bg_classifier_destroy(c);
    /* Keys over 16 bytes (compared by their bytes, not only the fingerprint), in and out of the
     * classifier's table, after 300 other keys have filled and overwritten the per-call cache. */
    static char big[16384];
    size_t o = (size_t)snprintf(big, sizeof big, "{");
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "\"key_number_%d\":\"x\",", i);
    for (int i = 0; i < 2; i++)
        o += (size_t)snprintf(big + o, sizeof big - o,
                              "\"customer_phone_number_primary\":\"415555267%d\",\"customer_order_number_primary\":"
                              "\"415555267%d\",\"x-amz-content-sha256\":\"415555267%d\",", i, i, i);
    snprintf(big + o, sizeof big - o, "\"end\":1}");
    body_as("application/json", big);
    CHECK(!R.unscannable);
    CHECK_INT(count("phone"), 2); /* under the phone key only: an order number is an id */
}

/* Keys of 1..15 plain bytes are looked up from the first 16-byte block of the key (scan_json's
 * fast path), other keys (escaped, longer, or near the end of the body) through the bytes: a key
 * must get the same rules either way, in and out of the classifier's table, at every length. */
static void test_fast_paths_key_block(void)
{
    static const char *const keys[] = {
        "ip", "tel", "dob", "name", "email", "mobile", "address", "latitude", "full_name", "first_name",
        "holder_name", "phone_number", "email_address", "customer_phone", "mobile_phone_no", "primary_phone_no",
        "customer_phone_no1", "PhoneNumber", "Phone", "x", "sku", "items", "description", "metrics"};
    static const char *const vals[] = {"Ann Lee", "4155552671", "203.0.113.7", "1990-01-31", "ann@example.com",
                                       "48.8566", "00:1A:2B:3C:4D:5E"};
    char b1[256], b2[256], b3[256];
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *key = keys[k];
        for (size_t v = 0; v < sizeof vals / sizeof vals[0]; v++) {
            const char *val = vals[v];
            /* b1: the key first, a long body after it (the block path for keys under 16 bytes);
             * b2: the same key with its first byte escaped (the byte path); b3: the key last, its
             * value short enough that fewer than 16 bytes follow the key's first byte when the key
             * is short (the byte path), else the same as b1. */
            snprintf(b1, sizeof b1, "{\"%s\":\"%s\",\"pad\":\"abcdefghijklmnopqrstuvwxyz abcdefghij\"}", key, val);
            snprintf(b2, sizeof b2, "{\"\\u%04x%s\":\"%s\",\"pad\":\"abcdefghijklmnopqrstuvwxyz abcdefghij\"}",
                     (unsigned char)key[0], key + 1, val);
            snprintf(b3, sizeof b3, "{\"pad\":\"abcdefghijklmnopqrstuvwxyz abcdefghij\",\"%s\":\"%s\"}", key, val);
            uint32_t c1[64], c2[64], c3[64];
            unsigned nd = bg_classifier_ndetectors(C) < 64 ? bg_classifier_ndetectors(C) : 64;
            body_as("application/json", b1);
            memcpy(c1, R.counts, nd * sizeof *c1);
            uint32_t cats1 = R.categories;
            body_as("application/json", b2);
            memcpy(c2, R.counts, nd * sizeof *c2);
            uint32_t cats2 = R.categories;
            body_as("application/json", b3);
            memcpy(c3, R.counts, nd * sizeof *c3);
            uint32_t cats3 = R.categories;
            for (unsigned d = 0; d < nd; d++) {
                if (c1[d] != c2[d] || c1[d] != c3[d])
                    bg_test_fail(__FILE__, __LINE__, "key \"%s\" value \"%s\" detector %u: %u / %u / %u", key,
                                 val, d, c1[d], c2[d], c3[d]);
            }
            CHECK_INT(cats1, cats2);
            CHECK_INT(cats1, cats3);
        }
    }
    /* The rules do differ by key (the check above can fail): a phone under a phone key, not
     * under sku. */
    body_as("application/json", "{\"phone\":\"4155552671\",\"pad\":\"abcdefghijklmnopqrstuvwxyz\"}");
    CHECK_INT(count("phone"), 1);
    body_as("application/json", "{\"sku\":\"4155552671\",\"pad\":\"abcdefghijklmnopqrstuvwxyz\"}");
    CHECK_INT(count("phone"), 0);
}

/* Form and query names and values are decoded when they hold '%' or a '+' (a space): looked for
 * in one pass up to 16 bytes, by memchr beyond; at every position and length the decoded text
 * is what the detectors see: "Ann+++Lee" undecoded is no name, "%64ob" undecoded no date of
 * birth key. */
static void test_form_escapes_every_length(void)
{
    char b[128], t[160];
    for (int k = 1; k <= 24; k++) {
        int o = snprintf(b, sizeof b, "name=Ann");
        for (int i = 0; i < k; i++)
            b[o++] = '+';
        snprintf(b + o, sizeof b - (size_t)o, "Lee&x=1");
        body_as("application/x-www-form-urlencoded", b);
        const bg_finding_t *f = nth("person_name", 0);
        CHECK(f != NULL);
        if (f) {
            CHECK_INT(f->offset, 5);
            CHECK_INT(f->length, 6 + k);
            CHECK_INT(f->encoded, 1);
        }
        /* A name escaped at each position (and past 16 bytes) in a query string. */
        static const char *const names[] = {"%64ob", "d%6Fb", "do%62", "date_of_birt%68", "customer_date_of_birt%68"};
        for (size_t nmi = 0; nmi < sizeof names / sizeof names[0]; nmi++) {
            snprintf(t, sizeof t, "/x?%s=1990-01-31&q=%.*s1", names[nmi], k, "++++++++++++++++++++++++");
            reset_headers();
            classify_full(t, NULL, 0, false);
            if (count("date_of_birth") != 1)
                bg_test_fail(__FILE__, __LINE__, "%s: %u date_of_birth findings", t, count("date_of_birth"));
        }
    }
    reset_headers();
    classify_full("/x?%73ku=1990-01-31", NULL, 0, false); /* decodes to sku */
    CHECK_INT(count("date_of_birth"), 0);
}

/* The walk takes a compact key's colon and value, and the next key after ',' or ", ", straight
 * from where the key was found: every spacing of the same document finds the same spans (by
 * their text), and the spacings JSON does not allow are still errors. */
static void test_json_spacing(void)
{
    static const char *const seps[][2] = {
        {",", ":"}, {", ", ": "}, {",\n  ", ": "}, {" ,", " :"}, {",  ", ":  "}, {",\t", ":\t"}, {", ", ":\n "},
        {"\n,", ":"}, {",", ": \r\n"}};
    static const char *const kv[][2] = {
        {"first_name", "\"Ann\""}, {"id", "100001"}, {"email", "\"ann.lee@example.com\""}, {"n", "[1,2]"},
        {"phone", "\"+14155552671\""}, {"x", "{\"ip\":\"203.0.113.7\"}"}, {"abcdefghijklm", "\"4111111111111111\""},
        {"abcdefghijklmn", "\"4111111111111111\""}, {"abcdefghijklmno", "\"4111111111111111\""},
        {"customer_phone", "\"4155552671\""}, {"last_name", "\"Lee\""}, {"ok", "true"}, {"sku", "\"SKU-1\""},
        {"dob", "\"1990-01-31\""}, {"z", "null"}};
    char doc[2048], want[1024] = "", got[1024];
    for (size_t si = 0; si < sizeof seps / sizeof seps[0]; si++) {
        size_t o = (size_t)snprintf(doc, sizeof doc, "{");
        for (size_t k = 0; k < sizeof kv / sizeof kv[0]; k++)
            o += (size_t)snprintf(doc + o, sizeof doc - o, "%s\"%s\"%s%s", k ? seps[si][0] : "", kv[k][0],
                                  seps[si][1], kv[k][1]);
        snprintf(doc + o, sizeof doc - o, "}");
        body_as("application/json", doc);
        CHECK(!R.unscannable);
        size_t g = 0;
        for (size_t f = 0; f < R.nfindings && g < sizeof got - 64; f++)
            g += (size_t)snprintf(got + g, sizeof got - g, "%u:%.*s|", R.findings[f].detector,
                                  (int)R.findings[f].length, doc + R.findings[f].offset);
        got[g] = 0;
        if (si == 0) {
            memcpy(want, got, g + 1);
            CHECK(R.nfindings >= 8);
        } else {
            CHECK_STR(got, want);
        }
    }
    static const char *const bad[] = {"{\"a\": ,\"b\":1}", "{\"a\" \"b\"}", "{\"a\":1, }", "{\"a\":1,,\"b\":2}",
                                      "{\"a\":1 \"b\":2}", "{\"abc\":}", "{\"abc\":1,\"defghij\"", "{\"a\":1,\"b\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* Padded behind (the key's block is read whole) and not. */
        snprintf(doc, sizeof doc, "%s", bad[i]);
        body_as("application/json", doc);
        if (!R.unscannable)
            bg_test_fail(__FILE__, __LINE__, "scannable: %s", doc);
        reset_headers();
        add_header("Content-Type", "application/json");
        char padded[256];
        size_t bl = strlen(bad[i]);
        memcpy(padded, bad[i], bl);
        memset(padded + bl, ' ', 40);
        padded[bl + 40] = 0;
        classify_full(NULL, padded, bl, false); /* the bytes past bl are readable, not the body */
        if (!R.unscannable)
            bg_test_fail(__FILE__, __LINE__, "scannable (padded): %s", doc);
    }
}

/* Findings that are dropped (a longer span replacing them, a second call on the same result, the
 * JSON attempt on a sniffed body given up for text) are wiped where they lay: dispose wipes only
 * [0, nfindings), so nothing that held a key or an offset may stay past it. */
static bool zero_past_findings(const bg_classification_t *r)
{
    const unsigned char *p = (const unsigned char *)(r->findings + r->nfindings);
    for (size_t i = 0; i < (r->findings_cap - r->nfindings) * sizeof *r->findings; i++)
        if (p[i])
            return false;
    return true;
}

static void test_dropped_findings_wiped(void)
{
    bg_classification_t r;
    bg_classification_init(&r, C);
    memset(r.findings, 0, r.findings_cap * sizeof *r.findings); /* only what a call writes is judged */
    /* Shorter spans and a longer one over them in one value (an AI prompt). */
    reset_headers();
    add_header("Content-Type", "application/json");
    const char *b = "{\"prompt\":\"a@b.example c@d.example 4111111111111111 +14155552671\"}";
    bg_classify_input_t in = {H, NH, NULL, 0, b, strlen(b), false, true, 0, false};
    CHECK_INT(bg_classify(C, &in, &r), 0);
    CHECK_INT(r.nfindings, 1);
    CHECK(zero_past_findings(&r));
    /* A second call on the same result that finds nothing leaves nothing of the first. */
    b = "{\"email\":\"ann@example.com\",\"ip\":\"203.0.113.7\"}";
    in.body = b, in.body_len = strlen(b), in.ai_route = false;
    CHECK_INT(bg_classify(C, &in, &r), 0);
    CHECK_INT(r.nfindings, 2);
    in.body = "{\"a\":1}", in.body_len = 7;
    CHECK_INT(bg_classify(C, &in, &r), 0);
    CHECK_INT(r.nfindings, 0);
    CHECK(zero_past_findings(&r));
    /* Sniffed JSON that turns out malformed: what the JSON walk found goes, the text scan's stays. */
    b = "{\"email\":\"ann@example.com\", \"note\":\"x\" oops";
    in.headers = NULL, in.nheaders = 0, in.body = b, in.body_len = strlen(b);
    CHECK_INT(bg_classify(C, &in, &r), 0);
    CHECK_INT(r.body_kind, BG_BODY_TEXT);
    CHECK_INT(r.nfindings, 1);
    CHECK(zero_past_findings(&r));
    bg_classification_dispose(&r);
}

/* The body's type from Content-Type spellings: case, blanks and parameters around the common
 * "application/json", and bytes that differ from a letter-free place of it by the case bit only. */
static void test_content_type_spellings(void)
{
    static const struct {
        const char *ct;
        int kind;
    } cases[] = {
        {"application/json", BG_BODY_JSON},
        {"APPLICATION/JSON", BG_BODY_JSON},
        {"Application/Json; charset=utf-8", BG_BODY_JSON},
        {"application/json \t ;charset=utf-8", BG_BODY_JSON},
        {"application/json  x", BG_BODY_OTHER},
        {"application/jsonx", BG_BODY_OTHER},
        {"application/jso", BG_BODY_OTHER},
        {"application\x0fjson", BG_BODY_OTHER},  /* '/' less 0x20 */
        {"applicatio\x0e/json", BG_BODY_OTHER},  /* 'n' less 0x60: not a case difference */
        {"applicationOjson", BG_BODY_OTHER},
        {"application/vnd.api+json", BG_BODY_JSON},
        {"text/json", BG_BODY_JSON},
        {"text/plain", BG_BODY_TEXT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        body_as(cases[i].ct, "{\"email\":\"ann@example.com\"}");
        if ((int)R.body_kind != cases[i].kind)
            bg_test_fail(__FILE__, __LINE__, "\"%s\": body_kind %d, want %d", cases[i].ct, R.body_kind, cases[i].kind);
    }
    /* Header names: any case; a byte that differs by 0x20 where the name has no letter is another name. */
    static const struct {
        const char *name;
        int kind;
    } names[] = {
        {"content-type", BG_BODY_FORM}, {"CONTENT-TYPE", BG_BODY_FORM}, {"Content-Type", BG_BODY_FORM},
        {"content\rtype", BG_BODY_JSON}, {"content_type", BG_BODY_JSON}, {"content-typf", BG_BODY_JSON},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        reset_headers();
        add_header(names[i].name, "application/x-www-form-urlencoded");
        classify_full(NULL, "{\"a\":1}", 7, false); /* sniffed as JSON when no Content-Type */
        if ((int)R.body_kind != names[i].kind)
            bg_test_fail(__FILE__, __LINE__, "\"%s\": body_kind %d, want %d", names[i].name, R.body_kind, names[i].kind);
    }
    /* Content-Encoding in any case is read (an unknown one makes the body unscannable). */
    const char *enc[] = {"content-encoding", "CONTENT-ENCODING", "Content-Encoding"};
    for (size_t i = 0; i < 3; i++) {
        reset_headers();
        add_header("Content-Type", "application/json");
        add_header(enc[i], "br");
        classify_full(NULL, "{}", 2, false);
        CHECK(R.unscannable);
    }
    reset_headers();
    add_header("Content-Type", "application/json");
    add_header("content\rencoding", "br");
    classify_full(NULL, "{}", 2, false);
    CHECK(!R.unscannable);
}

/* Header name families skipped whole (accept*, sec-fetch-*, sec-ch-*, x-b3-*) in any case, and
 * names that differ from them by one byte, or by the case bit where they have no letter, scanned. */
/* skip_locations (the gateway's mode) changes nothing but the path text: the same findings
 * (detector, category, where, header, offsets, flags), counts, categories and unscannable state
 * as a classification that builds it, with every path empty. Pending names (a bare "name" decided
 * at the object's end) and each place a finding can come from are among the inputs. */
static void test_skip_locations(void)
{
    static const struct {
        const char *ct, *target, *body;
    } cases[] = {
        {"application/json", "/v1/x?email=a%40b.example&q=1",
         "{\"user\":{\"name\":\"Ann Lee\",\"email\":\"ann@example.com\",\"phone\":\"+44 20 7946 0958\"},"
         "\"items\":[{\"name\":\"Chair\",\"sku\":\"A1\",\"price\":3},{\"ip\":\"203.0.113.9\"}],"
         "\"card\":\"4111 1111 1111 1111\",\"deep\":{\"a\":{\"b\":{\"c\":[[{\"first_name\":\"Bo\"}]]}}}}"},
        {"application/x-www-form-urlencoded", "/f", "name=Ann+Lee&email=ann%40example.com&iban=GB82WEST12345698765432"},
        {"multipart/form-data; boundary=XX", "/m",
         "--XX\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nbo@example.com\r\n"
         "--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhello\r\n--XX--\r\n"},
        {"text/plain", "/t", "write to cy@example.com or call +1 415 555 0100 from 198.51.100.7"},
        {"application/json", "/bad", "{\"email\":\"dee@example.com\",\"x\":"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        reset_headers();
        add_header("Content-Type", cases[k].ct);
        add_header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)");
        add_header("Authorization", "Bearer abcdefghijklmnopqrstuvwxyz0123456789");
        add_header("Cookie", "sessionid=3b1f9c2e7a6d4b0c8e5f; theme=dark");
        const char *b = cases[k].body;
        bg_classification_t full, lean;
        bg_classification_init(&full, C);
        bg_classification_init(&lean, C);
        bg_classify_input_t in = {H, NH, cases[k].target, strlen(cases[k].target), b, strlen(b), false, false, 0, false};
        CHECK_INT(bg_classify(C, &in, &full), 0);
        in.skip_locations = true;
        CHECK_INT(bg_classify(C, &in, &lean), 0);
        CHECK_INT(lean.nfindings, full.nfindings);
        CHECK(full.nfindings > 0);
        CHECK_INT(lean.categories, full.categories);
        CHECK_INT(lean.unscannable, full.unscannable);
        size_t named = 0;
        for (size_t i = 0; i < full.nfindings && i < lean.nfindings; i++) {
            const bg_finding_t *a = &full.findings[i], *z = &lean.findings[i];
            CHECK(a->detector == z->detector && a->category == z->category && a->where == z->where &&
                  a->json_string == z->json_string && a->encoded == z->encoded && a->header == z->header &&
                  a->offset == z->offset && a->length == z->length);
            CHECK_STR(z->path, "");
            named += a->path[0] != 0;
        }
        CHECK(named > 0); /* the full classification did name where its findings are */
        for (unsigned d = 0; d < bg_classifier_ndetectors(C); d++)
            CHECK_INT(lean.counts[d], full.counts[d]);
        bg_classification_dispose(&full);
        bg_classification_dispose(&lean);
    }
}

static void test_header_prefixes(void)
{
    static const struct {
        const char *name;
        int found;
    } names[] = {
        {"Accept", 0}, {"ACCEPT-Language", 0}, {"accept-x", 0}, {"Sec-Fetch-Site", 0}, {"SEC-CH-UA", 0},
        {"sec-ch-", 0}, {"X-B3-TraceId", 0}, {"x-b3-", 0}, {"Accep", 1}, {"Acceptx", 0}, {"Bccept", 1},
        {"Sec-Fetch", 1}, {"Sec\rFetch-Site", 1}, {"sec-ch\r", 1}, {"X-B4-TraceId", 1},
        {"X-Note", 1}, {"Secret-Note", 1},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        reset_headers();
        add_header(names[i].name, "mail ann@example.com");
        classify_full(NULL, NULL, 0, false);
        if ((int)count("email") != names[i].found)
            bg_test_fail(__FILE__, __LINE__, "\"%s\": %u e-mails, want %d", names[i].name, count("email"), names[i].found);
    }
}

/* ---------------------------------------------------------------- vendor traffic (pii_probe3) */

/* Keys written with accents meet the rules written without: prénom, teléfono, imię, data urodzenia. */
static void test_keys_with_accents(void)
{
    const char *b = "{\"pr\u00e9nom\": \"Zo\u00e9\", \"tel\u00e9fono\": \"612 34 56 78\", \"imi\u0119\": \"\u0141ukasz\", "
                    "\"data_urodzenia\": \"14.03.1985\", \"Handynummer\": \"0171 1234567\", \"portable\": \"06 12 34 56 78\"}";
    body_as("application/json", b);
    CHECK_INT(count("person_name"), 2);
    CHECK_FOUND("person_name", b, "Zo\u00e9");
    CHECK_INT(count("phone"), 3);
    CHECK_FOUND("phone", b, "612 34 56 78");
    CHECK_FOUND("date_of_birth", b, "14.03.1985");
    /* Form names are decoded first: pr%C3%A9nom is prénom. */
    body_as("application/x-www-form-urlencoded", "pr%C3%A9nom=Zo%C3%A9&t%C3%A9l%C3%A9phone=0612345678");
    CHECK_INT(count("person_name"), 1);
    CHECK_INT(count("phone"), 1);
}

/* A form or query "name" (nom, nombre ...) beside sku/price is the product's, as in JSON. */
static void test_params_product_names(void)
{
    body_as("application/x-www-form-urlencoded", "nom=Chaise+Pliante&sku=CH-2231&prix=49.90&stock=12");
    CHECK_INT(count("person_name"), 0);
    body_as("application/x-www-form-urlencoded", "stock=4&name=Harper+Sofa&price=1729.90");
    CHECK_INT(count("person_name"), 0);
    reset_headers();
    classify_full("/api/catalog/items?nombre=Oscar%20Dog%20Bed&precio=17.03", NULL, 0, false);
    CHECK_INT(count("person_name"), 0);
    /* ... and so are several, however many the list holds. */
    body_as("application/x-www-form-urlencoded",
            "name=Harper+Sofa&name=Emma+Mattress&nom=Greta+Vase&nombre=Oscar+Dog+Bed&nome=Jules+Armchair&sku=A-1");
    CHECK_INT(count("person_name"), 1); /* the fifth is past the names held back: read alone, as before */
    /* A flat list with a person's key beside the sku is a person's order: the name is theirs. */
    const char *o = "name=Jean+Dupont&email=jean%40orange.fr&sku=CH-2231&qty=1";
    body_as("application/x-www-form-urlencoded", o);
    CHECK_FOUND("person_name", o, "Jean+Dupont");
    CHECK_STR(nth("person_name", 0)->path, "name");
    CHECK_INT(nth("person_name", 0)->encoded, 1);
    reset_headers();
    classify_full("/checkout?Name=Lucas+Sato&Tel=0612345678&sku=4081930201448", NULL, 0, false);
    CHECK_INT(count("person_name"), 1);
    /* Without a product key it is a person's, wherever the name stands. */
    const char *b = "email=zoe%40orange.fr&name=Zo%C3%A9+Dubois&subject=Retour";
    body_as("application/x-www-form-urlencoded", b);
    CHECK_FOUND("person_name", b, "Zo%C3%A9+Dubois");
    /* multipart/form-data is the same list in parts: a product form's name is the product's ... */
#define PART(n, v) "--XyZ\r\nContent-Disposition: form-data; name=\"" n "\"\r\n\r\n" v "\r\n"
    body_as("multipart/form-data; boundary=XyZ",
            PART("name", "Harper Sofa") PART("sku", "HS-1") PART("price", "1729.90") "--XyZ--\r\n");
    CHECK(!R.unscannable);
    CHECK_INT(count("person_name"), 0);
    /* ... a person's beside their e-mail, with its part's name as the path ... */
    const char *m = PART("name", "Jean Dupont") PART("sku", "CH-2231") PART("email", "jean@orange.fr") "--XyZ--\r\n";
    body_as("multipart/form-data; boundary=XyZ", m);
    CHECK_FOUND("person_name", m, "Jean Dupont");
    CHECK_STR(nth("person_name", 0)->path, "name");
    /* ... a person's with no product part, and a person's in a list that was not read to its end. */
    m = PART("name", "Zoe Dubois") PART("subject", "Retour") "--XyZ--\r\n";
    body_as("multipart/form-data; boundary=XyZ", m);
    CHECK_FOUND("person_name", m, "Zoe Dubois");
    m = PART("sku", "HS-1") PART("name", "Zoe Dubois") "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end";
    body_as("multipart/form-data; boundary=XyZ", m);
    CHECK_STR(R.unscannable_reason, "malformed_multipart");
    CHECK_FOUND("person_name", m, "Zoe Dubois");
#undef PART
    /* JSON: the product keys in other languages (no sku, no ean). */
    body_as("application/json", "{\"nom\": \"Tasse \u00c9maill\u00e9e\", \"prix\": 12.5, \"quantit\u00e9\": 2}");
    CHECK_INT(count("person_name"), 0);
}

/* versionName, app_ver: dotted quads are versions; mobile_os_version is no phone number. */
static void test_version_keys(void)
{
    body_as("application/json", "{\"versionName\": \"2.14.3.1\", \"app_ver\": \"4.2.10.7\", \"sdkVer\": \"7.1.0.2\", "
                                "\"mobile_os_version\": \"26.5.158.136\", \"phone_app_build\": \"10.1.2.3\"}");
    CHECK_INT(R.nfindings, 0);
    /* "ver" ends server and resolver too: those hold addresses. */
    body_as("application/json", "{\"server\": \"10.0.0.5\", \"resolver\": \"9.9.9.9\"}");
    CHECK_INT(count("ip_address"), 2);
    reset_headers();
    classify_full("/collect?app_ver=23.5.193.142&uip=213.215.153.166", NULL, 0, false);
    CHECK_INT(count("ip_address"), 1);
}

/* An anti-forgery cookie authenticates nobody (as csrf keys in bodies); a session cookie does. */
static void test_cookie_csrf(void)
{
    reset_headers();
    add_header("Cookie", "csrftoken=kIXfkzGDb5g0unyY5AXogcfTeJUtR12m; XSRF-TOKEN=tgnVBdx7tcAotyg0Tx3duKivaYivgvWG; lang=fr");
    classify_full("/", NULL, 0, false);
    CHECK_INT(count("session_cookie"), 0);
    reset_headers();
    add_header("Cookie", "csrftoken=kIXfkzGDb5g0unyY5AXogcfTeJUtR12m; sessionid=xss0UGOmaDHNu9eoPqzRGTSESOyd03Lb");
    classify_full("/", NULL, 0, false);
    CHECK_INT(count("session_cookie"), 1);
}

/* 16 digits that pass Luhn with an issuer prefix are a card under an id key too; 12-15 stay ids. */
static void test_card_under_id_keys(void)
{
    const char *b = "{\"refund_reference\": \"4696474137997217\", \"order_id\": \"4111111111111111\", \"ref\": \"638097588674\", "
                    "\"id\": \"4111111111111112\", \"txid\": \"378282246310005\", \"snowflake_id\": \"6011111111111111110\"}";
    body_as("application/json", b);
    CHECK_INT(count("card_number"), 2);
    CHECK_FOUND("card_number", b, "4696474137997217");
    body_as("application/json", "{\"order_id\": 4111111111111111}");
    CHECK_INT(count("card_number"), 1);
}

/* Product and thing objects: their "name" titles the thing. */
static void test_name_of_things(void)
{
    body_as("application/json",
            "{\"line_items\": [{\"price_data\": {\"currency\": \"eur\", \"product_data\": {\"name\": \"Harper Sofa\"}}}], "
            "\"offer\": {\"name\": \"Summer Sale\"}, \"attachment\": {\"name\": \"Photo Front.jpg\"}, "
            "\"location\": {\"name\": \"Berlin Mitte\"}, \"custom_fields\": [{\"name\": \"Loyalty Tier\", \"value\": \"Gold\"}], "
            "\"fields\": [{\"name\": \"Account Manager\", \"value\": \"Lyon\"}]}");
    CHECK_INT(count("person_name"), 0);
    /* ... while people's objects keep theirs. */
    body_as("application/json", "{\"organizer\": {\"name\": \"Pieter Jansen\"}, \"attendees\": [{\"name\": \"Ana Silva\"}]}");
    CHECK_INT(count("person_name"), 2);
}

/* The compound name keys of e-signature, school, freight and card forms. */
static void test_more_person_name_keys(void)
{
    const char *b = "{\"signer_name\": \"Ana\u00efs Lef\u00e8vre\", \"witness_name\": \"Eoin Murphy\", \"guardian_name\": "
                    "\"Camille Martin\", \"name_on_card\": \"ZOE DUBOIS\", \"consignee_name\": \"Jan Nowak\", "
                    "\"author_name\": \"Lars Nielsen\", \"emergency_contact_name\": \"Paul Martin\"}";
    body_as("application/json", b);
    CHECK_INT(count("person_name"), 7);
    CHECK_FOUND("person_name", b, "Ana\u00efs Lef\u00e8vre");
}

/* A birth date sent as a timestamp at midnight (JavaScript's Date) is still the birth date. */
static void test_dob_with_time(void)
{
    const char *b = "{\"birthday\": \"1985-03-14T00:00:00.000Z\", \"created_at\": \"2024-03-14T00:00:00Z\"}";
    body_as("application/json", b);
    CHECK_INT(count("date_of_birth"), 1);
    CHECK_FOUND("date_of_birth", b, "1985-03-14T00:00:00.000Z");
    body_as("application/json", "{\"dob\": \"1985-03-14T12:00:00+02:00\", \"birth_date\": \"19850314T000000Z\"}");
    CHECK_INT(count("date_of_birth"), 2);
}

/* Device ids under keys that also hold a phone word (mobile_device_id) or ad-tech's MAID. */
static void test_device_keys_with_phone_words(void)
{
    body_as("application/json", "{\"mobile_device_id\": \"6D92078A-8246-4BA4-AE5B-76104861E7DC\", "
                                "\"maid\": \"38400000-8cf0-11bd-b23e-10b96e40000d\", \"mobile\": \"+33612345678\"}");
    CHECK_INT(count("device_id"), 2);
    CHECK_INT(count("phone"), 1);
}

/* A UUID's groups are no Belgian IBAN, even when they pass mod 97. */
static void test_iban_not_in_uuid(void)
{
    body_as("application/json", "{\"cartId\": \"0d0b3a5e-8c1e-4f0a-be71-6dd961ca2d09\"}");
    CHECK_INT(R.nfindings, 0);
    text("request 0d0b3a5e-8c1e-4f0a-be71-6dd961ca2d09 failed");
    CHECK_INT(count("iban"), 0);
    body_as("application/json", "{\"client_reference_id\": \"be70f719-6366-4bd7-8e1a-0c2f5b7d9e31\"}");
    CHECK_INT(R.nfindings, 0);
    const char *b = "Konto BE71 0961 2345 6769, ref-BE71-0961-2345-6769";
    text(b);
    CHECK_INT(count("iban"), 2);
}

/* No card starts inside a longer grouped number (a parcel's 22 digits) unless it is printed as a card. */
static void test_card_inside_grouped_number(void)
{
    text("Your package 9400 1192 3601 1890 1837 21 ships today.");
    CHECK_INT(count("card_number"), 0);
    const char *b = "Tried 4012-8888-8888-1881 4012 8888 8888 1881 and 4111111111111111 5555555555554444.";
    text(b);
    CHECK_INT(count("card_number"), 4);
}

int main(void)
{
    char err[128];
    C = bg_classifier_create(NULL, err, sizeof err);
    if (!C)
        return 1;
    bg_classification_init(&R, C);
    RUN(test_luhn_and_cards);
    RUN(test_iban_validator);
    RUN(test_ssn_validator);
    RUN(test_email_ip_validators);
    RUN(test_text_detectors_offsets);
    RUN(test_text_lookalikes);
    RUN(test_version_and_number_words);
    RUN(test_url_hosts_and_oids);
    RUN(test_email_quoted_local);
    RUN(test_text_coordinates);
    RUN(test_labelled_grouped_numbers);
    RUN(test_phone_context);
    RUN(test_phone_words_label_the_number);
    RUN(test_phone_word_reach);
    RUN(test_phone_words_other_languages);
    RUN(test_phone_national_shapes);
    RUN(test_phone_number_words_other_languages);
    RUN(test_phone_not_identifiers);
    RUN(test_context_reads_stay_inside);
    RUN(test_text_dob_and_paths);
    RUN(test_text_dob_month_names);
    RUN(test_jwt_and_api_keys);
    RUN(test_imei_before_card_and_phone);
    RUN(test_json_paths_offsets);
    RUN(test_json_escapes);
    RUN(test_json_names_and_siblings);
    RUN(test_json_keys_lookalikes);
    RUN(test_json_coordinate_arrays);
    RUN(test_json_more_name_and_device_keys);
    RUN(test_json_keys_other_languages);
    RUN(test_json_sequence_keys);
    RUN(test_json_unscannable);
    RUN(test_ai_route);
    RUN(test_cookie_analytics_ids);
    RUN(test_headers);
    RUN(test_path_and_query);
    RUN(test_form);
    RUN(test_multipart);
    RUN(test_base64_json_params);
    RUN(test_base64_json_elsewhere);
    RUN(test_other_bodies);
    RUN(test_gzip);
    RUN(test_zip_bomb);
    RUN(test_findings_cap);
    RUN(test_findings_growth);
    RUN(test_memo_middle);
    RUN(test_detector_table);
    RUN(test_config_custom_and_lists);
    RUN(test_fast_paths_text);
    RUN(test_fast_paths_shapes);
    RUN(test_fast_paths_repeats);
    RUN(test_fast_paths_keys);
    RUN(test_fast_paths_headers);
    RUN(test_fast_paths_raw_keys);
    RUN(test_email_spans);
    RUN(test_json_path_prefix);
    RUN(test_nino_prefixes);
    RUN(test_fast_paths_long_values);
    RUN(test_dropped_findings_wiped);
    RUN(test_content_type_spellings);
    RUN(test_header_prefixes);
    RUN(test_fast_paths_key_block);
    RUN(test_form_escapes_every_length);
    RUN(test_json_spacing);
    RUN(test_skip_locations);
    RUN(test_names_that_are_values);
    RUN(test_keys_with_accents);
    RUN(test_params_product_names);
    RUN(test_version_keys);
    RUN(test_cookie_csrf);
    RUN(test_card_under_id_keys);
    RUN(test_name_of_things);
    RUN(test_more_person_name_keys);
    RUN(test_dob_with_time);
    RUN(test_device_keys_with_phone_words);
    RUN(test_card_inside_grouped_number);
    RUN(test_iban_not_in_uuid);
    bg_classification_dispose(&R);
    bg_classifier_destroy(C);
    return bg_test_done();
}
