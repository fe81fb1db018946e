// Negative lines (no in-scope personal data) from faker-js values: numbers and strings that look
// like identifiers, amounts, dates and versions. Run by bench/pii_probe/run.sh.
import { allFakers, faker as F } from '@faker-js/faker';
const seed = Number(process.argv[2] || 1), N = Number(process.argv[3] || 100);
const locales = ['en_US','en_GB','de','fr','es','it','nl','pt_BR','pl','sv','ja','ru'];
let k = 0; const out = [];
const gens = [
  f => `Order #${f.string.numeric({length: {min: 6, max: 12}})} has shipped`,
  f => `Total: ${f.commerce.price({min: 1, max: 99999})} ${f.finance.currencyCode()}`,
  f => `Invoice ${f.string.numeric(8)} due ${f.date.future().toISOString()}`,
  f => `version ${f.system.semver()} released on ${f.date.past().toISOString().slice(0, 10)}`,
  f => `request id ${f.string.uuid()}`,
  f => `ISBN ${f.commerce.isbn()}`,
  f => `ISBN-10 ${f.commerce.isbn(10)}`,
  f => `${f.location.zipCode()} ${f.location.city()}`,
  f => `Tracking number: ${f.string.numeric(12)}`,
  f => `commit ${f.git.commitSha()}`,
  f => `color ${f.color.rgb()} and ${f.internet.color()}`,
  f => `${f.lorem.sentence()} ${f.number.int({min: 1000000, max: 999999999})} ${f.lorem.words(3)}`,
  f => `The ${f.commerce.productName()} costs ${f.finance.amount()} and weighs ${f.number.float({min: 1, max: 999, fractionDigits: 3})} kg`,
  f => `Meeting at ${f.date.anytime().toISOString().replace('T', ' ').slice(0, 19)}`,
  f => `SKU ${f.string.alphanumeric({length: 10, casing: 'upper'})}, qty ${f.number.int(500)}`,
  f => `Build ${f.number.int({min: 1, max: 9})}.${f.number.int(99)}.${f.number.int(999)}.${f.number.int(9999)}`,
  f => `${f.number.int({min: 0, max: 1})}${f.number.int({min: 10, max: 99})} ${f.number.int({min: 100, max: 999})} ${f.number.int({min: 1000, max: 9999})} units sold`,
  f => `Population ${f.number.int({min: 1000000, max: 99999999}).toLocaleString('en-US')}`,
  f => `Coordinates of the warehouse grid: ${f.number.int(90)}, ${f.number.int(180)}`,
  f => `Ref: ${f.string.numeric(10)}`,
  f => `hash ${f.string.hexadecimal({length: 64, prefix: ''})}`,
  f => `Timestamp ${f.date.anytime().getTime()}`,
  f => `Temperature ${f.number.float({min: -40, max: 50, fractionDigits: 1})} C at ${f.date.anytime().toISOString()}`,
  f => `Case ${f.string.numeric(9)} opened`,
  f => `Product code ${f.commerce.upc ? f.commerce.upc() : f.string.numeric(12)}`,
  f => `${f.company.name()} ${f.company.catchPhrase()}`,
  f => `MIME ${f.system.mimeType()} file ${f.system.fileName()}`,
  f => `Port ${f.internet.port()} on localhost`,
  f => `${f.finance.transactionDescription().replace(/\d{4,}/g, '1234')}`,
  f => `Routing number ${f.finance.routingNumber()}`,
  f => `BIC ${f.finance.bic()}`,
];
for (let n = 0; n < N; n++) {
  const loc = locales[n % locales.length]; const f = allFakers[loc]; f.seed(seed * 7919 + n);
  for (const g of gens) {
    let text; try { text = g(f); } catch (e) { continue; }
    out.push(JSON.stringify({id: `fkn-${seed}-${k++}`, text, entities: [], ignore: [], label_scope: "all", context: "free_text", negative_kind: "faker_" + gens.indexOf(g), source: "faker-js"}));
  }
}
console.log(out.join('\n'));
