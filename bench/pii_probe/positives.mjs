// Positive lines in the PII eval format (one faker-js value per line: phone, card, IBAN, IP, e-mail,
// SSN; 43 locales) to probe how the
// classifier's rules generalise beyond the labelled dev set. Run by bench/pii_probe/run.sh.
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
console.log(out.join('\n'));
