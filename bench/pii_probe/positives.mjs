// Positive lines in the PII eval format to probe how the classifier's rules generalise beyond the
// labelled dev set: one faker-js value per line for phone, card, IBAN, IP, e-mail, SSN (43 locales,
// free text); then names, birth dates, device ids, coordinates, NINOs and tokens in the contexts
// the eval uses (JSON, form, query, headers, free text). Run by bench/pii_probe/run.sh.
import { allFakers } from '@faker-js/faker';
const locales = ['en_US','en_GB','en_CA','en_AU','en_IN','de','de_AT','de_CH','fr','fr_CH','es','es_MX','it','nl','nl_BE','pt_BR','pt_PT','pl','sv','nb_NO','da','fi','cs_CZ','sk','hu','ro','el','tr','ru','uk','ja','ko','zh_CN','he','ar','id_ID','vi','th','lv','hr','af_ZA','en_NG','en_IE'];
const seed = Number(process.argv[2] || 1);
const N = Number(process.argv[3] || 300);
const tpl = {
  PHONE: ["My phone number is {}", "Call me at {} tomorrow.", "You can reach us on {}.", "Phone: {}", "tel {} (office)", "{}", "Contact {} for details", "Her mobile is {}, call after 6pm"],
  CREDIT_CARD: ["My card number is {}", "Please charge {} for the order.", "card: {}", "{}", "I paid with {} yesterday", "The credit card {} expired"],
  IBAN: ["Transfer to {} please", "IBAN: {}", "My account is {}.", "{}", "Send the refund to IBAN {}"],
  IP_ADDRESS: ["Login from {} failed", "client ip {}", "Server at {} is down.", "{}", "Connection from {} was refused"],
  EMAIL: ["Write to {} today", "email: {}", "{}", "Contact me at {}.", "Send it to {}, thanks"],
  US_SSN: ["My SSN is {}", "ssn: {}", "{}", "Social security number {} on file."],
};
let lineNo = 0;
const out = [];
function add(type, value, f) {
  const ts = tpl[type]; const t = ts[f.number.int({min: 0, max: ts.length - 1})];
  const i = t.indexOf('{}');
  const text = t.slice(0, i) + value + t.slice(i + 2);
  out.push(JSON.stringify({id: `fk-${seed}-${lineNo++}`, text, entities: [{type, start: i, end: i + value.length}], ignore: [], label_scope: "all", context: "free_text", negative_kind: null, source: "faker-js", locale: f._loc}));
}
for (let n = 0; n < N; n++) {
  const loc = locales[n % locales.length];
  const f = allFakers[loc]; if (!f) continue;
  f.seed(seed * 100000 + n); f._loc = loc;
  const style = ['human', 'national', 'international'][n % 3];
  add('PHONE', f.phone.number({style}), f);
  const issuers = ['visa','mastercard','amex','discover','jcb','diners_club','maestro'];
  let cc = allFakers.en.finance.creditCardNumber(issuers[n % issuers.length]);
  add('CREDIT_CARD', cc, f);
  add('IBAN', allFakers.en.finance.iban({formatted: n % 2 === 0}), f);
  add('IP_ADDRESS', n % 3 === 0 ? f.internet.ipv6() : f.internet.ipv4(), f);
  add('EMAIL', f.internet.email(), f);
  if (n % 2 === 0) {
    let a; do { a = f.number.int({min: 1, max: 899}); } while (a === 666);
    const g = f.number.int({min: 1, max: 99}), s = f.number.int({min: 1, max: 9999});
    const p = (x, w) => String(x).padStart(w, '0');
    add('US_SSN', n % 4 === 0 ? `${p(a,3)}-${p(g,2)}-${p(s,4)}` : `${p(a,3)} ${p(g,2)} ${p(s,4)}`, f);
  }
}

// --- Session 10: the other in-scope types of the eval (PERSON, DATE_OF_BIRTH, DEVICE_ID,
// GEO_COORDINATE, NATIONAL_ID, AUTH_TOKEN), in the contexts the eval uses (JSON bodies, forms, query
// strings, header blocks, free text). A line is built from pieces: strings, and {t: TYPE, v: VALUE}
// for a labelled value; offsets are code points. The loop above is untouched (its lines, ids and
// figures stay as they were); these lines come after it, from their own seeds.
const cp = s => [...s].length;
function line(ctx, parts, f, ignore = []) {
  let text = '', ents = [];
  for (const p of parts) {
    if (typeof p === 'string') { text += p; continue; }
    const st = cp(text); text += p.v;
    if (p.t) ents.push({type: p.t, start: st, end: cp(text)});
  }
  out.push(JSON.stringify({id: `fk-${seed}-${lineNo++}`, text, entities: ents, ignore, label_scope: "all", context: ctx, negative_kind: null, source: "faker-js", locale: f._loc}));
}
const E = (t, v) => ({t, v});
const q = s => JSON.stringify(s);                       // a JSON string literal, quotes included
const J = (t, v) => ['"', E(t, JSON.stringify(v).slice(1, -1)), '"']; // a labelled JSON string value
const form = s => encodeURIComponent(s).replace(/%20/g, '+');
const pick = (f, a) => a[f.number.int({min: 0, max: a.length - 1})];
const pad = (x, w = 2) => String(x).padStart(w, '0');
const MON = ['January','February','March','April','May','June','July','August','September','October','November','December'];
function dobText(f, d) {
  const Y = d.getUTCFullYear(), M = d.getUTCMonth() + 1, D = d.getUTCDate();
  return pick(f, [`${Y}-${pad(M)}-${pad(D)}`, `${pad(D)}/${pad(M)}/${Y}`, `${pad(M)}/${pad(D)}/${Y}`,
                  `${pad(D)}.${pad(M)}.${Y}`, `${D} ${MON[M - 1]} ${Y}`, `${MON[M - 1]} ${D}, ${Y}`,
                  `${D} ${MON[M - 1].slice(0, 3)} ${Y}`, `${Y}/${pad(M)}/${pad(D)}`]);
}
function ninoVal(f) {
  const L1 = 'ABCEGHJKLMNOPRSTWXYZ', L2 = 'ABCEGHJKLMNPRSTWXYZ';
  let p; do { p = pick(f, [...L1]) + pick(f, [...L2]); } while (['BG','GB','NK','KN','TN','NT','ZZ'].includes(p));
  const d = f.string.numeric(6), s = pick(f, ['A','B','C','D']);
  let v = pick(f, [`${p}${d}${s}`, `${p} ${d.slice(0,2)} ${d.slice(2,4)} ${d.slice(4)} ${s}`, `${p}${d} ${s}`]);
  return f.number.int(4) === 0 ? v.toLowerCase() : v;
}
function macVal(f) {
  const m = f.internet.mac(pick(f, [':', ':', '-']));
  return pick(f, [m, m.toUpperCase(), m]);
}
function ciscoMac(f) { const h = f.string.hexadecimal({length: 12, prefix: '', casing: 'lower'}); return `${h.slice(0,4)}.${h.slice(4,8)}.${h.slice(8)}`; }
function imeiVal(f) {
  const d = f.phone.imei().replace(/-/g, '');
  return pick(f, [d, `${d.slice(0,2)}-${d.slice(2,8)}-${d.slice(8,14)}-${d[14]}`, `${d.slice(0,8)} ${d.slice(8,14)} ${d[14]}`]);
}
function apiKey(f) {
  const a = n => f.string.alphanumeric(n);
  return pick(f, [`sk_live_${a(24)}`, `sk_test_${a(24)}`, `ghp_${a(36)}`, `xoxb-${f.string.numeric(12)}-${f.string.numeric(13)}-${a(24)}`,
                  `AKIA${f.string.fromCharacters('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}`, `AIza${a(35)}`, `sk-proj-${a(48)}`, `glpat-${a(20)}`, `SG.${a(22)}.${a(43)}`]);
}
const b64 = s => Buffer.from(s).toString('base64');
for (let n = 0; n < N; n++) {
  const loc = locales[n % locales.length];
  const f = allFakers[loc]; if (!f) continue;
  f.seed(seed * 100000 + 50000 + n); f._loc = loc;
  const en = allFakers.en; en.seed(seed * 100000 + 70000 + n);
  // PERSON: names under name keys (bare "name" in a person's object), in JSON, forms and query strings.
  {
    const fn = f.person.firstName(), ln = f.person.lastName(), full = f.person.fullName();
    const k = f.number.int(11);
    if (k === 10) line('json', ['{"transfer": {"amount": ', en.finance.amount(), ', "', pick(f, ['beneficiary_name', 'payeeName', 'creditor_name', 'debtor_name', 'payer_name', 'owner_name']), '": ', ...J('PERSON', full), '}}'], f);
    else if (k === 0) line('json', ['{"user": {"first_name": ', ...J('PERSON', fn), ', "last_name": ', ...J('PERSON', ln), ', "plan": "pro"}}'], f);
    else if (k === 1) line('json', ['{"customer": {"name": ', ...J('PERSON', full), ', "email_verified": true, "orders": ', String(f.number.int(40)), '}}'], f);
    else if (k === 2) line('json', ['{"card": {"holder_name": ', ...J('PERSON', full), ', "last4": "', en.string.numeric(4), '"}}'], f);
    else if (k === 3) line('json', ['{"fullName": ', ...J('PERSON', full), ', "role": "admin"}'], f);
    else if (k === 4) line('json', ['{"contacts": [{"name": ', ...J('PERSON', full), ', "relation": "spouse"}, {"name": ', ...J('PERSON', f.person.fullName()), ', "relation": "parent"}]}'], f);
    else if (k === 5) line('json', ['{"shipping": {"recipient_name": ', ...J('PERSON', full), ', "method": "express"}}'], f);
    else if (k === 6) line('json', ['{"passenger": {"firstName": ', ...J('PERSON', fn), ', "lastName": ', ...J('PERSON', ln), ', "seat": "', String(f.number.int({min: 1, max: 40})), 'C"}}'], f);
    else if (k === 7) line('form', ['first_name=', E('PERSON', form(fn)), '&last_name=', E('PERSON', form(ln)), '&newsletter=on'], f);
    else if (k === 8) line('form', ['name=', E('PERSON', form(full)), '&plan=basic&accept_terms=1'], f);
    else line('query', ['/api/v1/users/search?full_name=', E('PERSON', form(full)), '&page=', String(f.number.int({min: 1, max: 9}))], f);
  }
  // DATE_OF_BIRTH: under birth-date keys, and in prose right after "date of birth", "DOB", "born".
  {
    const d = f.date.birthdate(), v = dobText(f, d);
    const k = f.number.int(7);
    const key = pick(f, ['dob', 'date_of_birth', 'birthDate', 'birth_date', 'birthday', 'dateOfBirth']);
    if (k <= 2) line('json', ['{"member": {"id": ', String(f.number.int({min: 100, max: 99999})), ', ', q(key), ': ', ...J('DATE_OF_BIRTH', v), ', "tier": "gold"}}'], f);
    else if (k === 3) line('form', [key, '=', E('DATE_OF_BIRTH', form(v)), '&country=', f.location.countryCode()], f);
    else if (k === 4) line('query', ['/v2/eligibility?', key, '=', E('DATE_OF_BIRTH', form(v)), '&product=term-life'], f);
    else line('free_text', [pick(f, ['Date of birth: ', 'DOB ', 'I was born on ', 'Patient DOB: ', 'born ']), E('DATE_OF_BIRTH', v), pick(f, ['', '.', ' in the system'])], f);
  }
  // DEVICE_ID: MACs (free text, keys, headers), IMEIs (with their word or key), advertising ids and
  // device UUIDs under device keys.
  {
    const k = f.number.int(13);
    const uuid = f.string.uuid(), UU = uuid.toUpperCase();
    if (k === 11) line('json', ['{"context": {"device": {"id": ', ...J('DEVICE_ID', pick(f, [uuid, UU])), ', "manufacturer": "', en.company.name(), '", "type": "ios"}}, "event": "Order Completed"}'], f);
    else if (k === 12) line('json', ['{"imp": [{"id": "1", "bidfloor": 0.5}], "device": {"ifa": ', ...J('DEVICE_ID', uuid), ', "os": "android"}}'], f);
    else
    if (k === 0) line('free_text', [pick(f, ['Device MAC: ', 'MAC address ', 'The router sees ', 'wifi mac=', 'Bluetooth address ']), E('DEVICE_ID', macVal(f)), pick(f, ['', '.', ' is blocked'])], f);
    else if (k === 1) line('free_text', ['Switch port learned ', E('DEVICE_ID', ciscoMac(f)), ' on vlan ', String(f.number.int({min: 2, max: 4000}))], f);
    else if (k === 2) line('free_text', [pick(f, ['IMEI: ', 'My phone\'s IMEI is ', 'imei ']), E('DEVICE_ID', imeiVal(f)), pick(f, ['', '.'])], f);
    else if (k === 3) line('json', ['{"device": {"imei": ', ...J('DEVICE_ID', imeiVal(f)), ', "model": "', en.commerce.productName(), '"}}'], f);
    else if (k === 4) line('json', ['{"', pick(f, ['advertising_id', 'idfa', 'advertisingId', 'idfv']), '": ', ...J('DEVICE_ID', UU), ', "att_status": "authorized"}'], f);
    else if (k === 5) line('json', ['{"', pick(f, ['gaid', 'adid', 'android_id', 'deviceId', 'device_id', 'installation_id']), '": ', ...J('DEVICE_ID', pick(f, [uuid, f.string.hexadecimal({length: 16, prefix: '', casing: 'lower'})])), ', "sdk": "', en.system.semver(), '"}'], f);
    else if (k === 6) line('json', ['{"mac_address": ', ...J('DEVICE_ID', macVal(f)), ', "rssi": -', String(f.number.int({min: 30, max: 90})), '}'], f);
    else if (k === 7) line('query', ['/track?event=open&', pick(f, ['device_id', 'idfa', 'gaid', 'deviceId']), '=', E('DEVICE_ID', pick(f, [uuid, UU])), '&ts=', String(en.date.recent().getTime())], f);
    else if (k === 8) line('query', ['/captive/portal?mac=', E('DEVICE_ID', form(macVal(f))), '&ssid=Guest'], f);
    else if (k === 9) line('headers', ['Host: api.example.com\r\nX-Device-Id: ', E('DEVICE_ID', pick(f, [uuid, macVal(f)])), '\r\nAccept: application/json\r\n'], f);
    else line('headers', ['Host: ads.example.com\r\nX-Advertising-Id: ', E('DEVICE_ID', UU), '\r\nAccept: */*\r\n'], f);
  }
  // GEO_COORDINATE: lat/lng keys (numbers and strings), "lat,lon" pairs under location keys.
  {
    const la = f.location.latitude({precision: f.number.int({min: 3, max: 6})}), lo = f.location.longitude({precision: f.number.int({min: 3, max: 6})});
    const k = f.number.int(9);
    if (k === 0) line('json', ['{"lat": ', E('GEO_COORDINATE', String(la)), ', "lng": ', E('GEO_COORDINATE', String(lo)), ', "accuracy_m": ', String(f.number.int({min: 3, max: 80})), '}'], f);
    else if (k === 1) line('json', ['{"position": {"latitude": ', E('GEO_COORDINATE', String(la)), ', "longitude": ', E('GEO_COORDINATE', String(lo)), '}, "speed": 0}'], f);
    else if (k === 2) line('json', ['{"location": ', ...J('GEO_COORDINATE', `${la},${lo}`), ', "source": "gps"}'], f);
    else if (k === 3) line('json', ['{"user_lat": ', ...J('GEO_COORDINATE', String(la)), ', "user_lon": ', ...J('GEO_COORDINATE', String(lo)), '}'], f);
    else if (k === 4) line('query', ['/api/nearby?lat=', E('GEO_COORDINATE', String(la)), '&lng=', E('GEO_COORDINATE', String(lo)), '&radius=', String(f.number.int({min: 1, max: 50}))], f);
    else if (k === 5) line('query', ['/weather?latitude=', E('GEO_COORDINATE', String(la)), '&longitude=', E('GEO_COORDINATE', String(lo)), '&units=metric'], f);
    else if (k === 6) line('query', ['/geo/reverse?ll=', E('GEO_COORDINATE', form(`${la},${lo}`)), '&lang=en'], f);
    else if (k === 7) line('json', ['{"checkin": {"coords": ', ...J('GEO_COORDINATE', `${la}, ${lo}`), ', "venue": "', en.company.name(), '"}}'], f);
    else line('json', ['{"type": "Feature", "geometry": {"type": "Point", "coordinates": [', E('GEO_COORDINATE', String(lo)), ', ', E('GEO_COORDINATE', String(la)), ']}}'], f);
  }
  // NATIONAL_ID (UK NINO): spaced, unspaced, lower case; under NINO keys and in prose.
  {
    const v = ninoVal(f), k = f.number.int(6);
    if (k === 0) line('json', ['{"applicant": {"nino": ', ...J('NATIONAL_ID', v), ', "tax_year": "2024-25"}}'], f);
    else if (k === 1) line('json', ['{"ni_number": ', ...J('NATIONAL_ID', v), '}'], f);
    else if (k === 2) line('form', ['national_insurance_number=', E('NATIONAL_ID', form(v)), '&employer=', form(en.company.name())], f);
    else if (k === 3) line('free_text', [pick(f, ['My National Insurance number is ', 'NI number: ', 'NINO ', 'national insurance no. ']), E('NATIONAL_ID', v), pick(f, ['', '.', ', thanks'])], f);
    else line('free_text', [E('NATIONAL_ID', v)], f);
  }
  // AUTH_TOKEN: JWTs and opaque bearer tokens in Authorization, API keys in headers, bodies, query
  // strings and prose, session cookies, OAuth token responses.
  {
    const jwt = f.internet.jwt(), opaque = f.string.alphanumeric({length: f.number.int({min: 32, max: 64})});
    const k = f.number.int(10);
    if (k === 0) line('headers', ['Host: api.example.com\r\nAuthorization: Bearer ', E('AUTH_TOKEN', jwt), '\r\nAccept: application/json\r\n'], f);
    else if (k === 1) line('headers', ['Host: api.example.com\r\nAuthorization: Bearer ', E('AUTH_TOKEN', opaque), '\r\n'], f);
    else if (k === 2) line('headers', ['Host: api.example.com\r\nAuthorization: Basic ', E('AUTH_TOKEN', b64(`${en.internet.username()}:${en.internet.password()}`)), '\r\n'], f);
    else if (k === 3) line('headers', ['Host: api.example.com\r\n', pick(f, ['X-API-Key', 'Api-Key', 'X-Auth-Token']), ': ', E('AUTH_TOKEN', pick(f, [apiKey(f), opaque])), '\r\n'], f);
    else if (k === 4) line('headers', ['Host: shop.example.com\r\nCookie: lang=', pick(f, ['en', 'de', 'fr']), '; ', pick(f, ['sessionid', 'connect.sid', 'PHPSESSID', '_session', 'auth_token']), '=', E('AUTH_TOKEN', opaque), '\r\n'], f);
    else if (k === 5) line('json', ['{"access_token": ', ...J('AUTH_TOKEN', jwt), ', "token_type": "Bearer", "expires_in": 3600}'], f);
    else if (k === 6) line('json', ['{"integration": "', en.company.name(), '", "api_key": ', ...J('AUTH_TOKEN', apiKey(f)), ', "retries": 3}'], f);
    else if (k === 7) line('query', ['/v1/export?', pick(f, ['access_token', 'api_key', 'token']), '=', E('AUTH_TOKEN', pick(f, [jwt, apiKey(f), opaque])), '&format=csv'], f);
    else if (k === 8) line('free_text', [pick(f, ['Use this key: ', 'export API_KEY=', 'The token ', 'key ']), E('AUTH_TOKEN', apiKey(f)), pick(f, ['', ' was leaked', ' for the staging env'])], f);
    else line('free_text', ['curl -H "Authorization: Bearer ', E('AUTH_TOKEN', jwt), '" https://api.example.com/me'], f);
  }
}
console.log(out.join('\n'));
