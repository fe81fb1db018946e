// Negative lines (no in-scope personal data) from faker-js values: numbers and strings that look
// like identifiers, amounts, dates and versions; then look-alikes of names, birth dates, device ids,
// coordinates, NINOs and tokens (product names, request-id UUIDs, hashes, CSRF tokens …) in the
// eval's contexts. Run by bench/pii_probe/run.sh.
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

// --- Session 10: look-alikes of the other in-scope types (names, birth dates, device ids,
// coordinates, NINOs, tokens) in the contexts the eval uses. The loop above is untouched; these
// come after it, from their own seeds, with named kinds.
const negs = {
  product_name: f => [`json`, `{"name": ${JSON.stringify(f.commerce.productName())}, "sku": "SKU-${f.string.numeric(5)}", "price": ${f.commerce.price()}}`],
  product_parent: f => [`json`, `{"product": {"name": ${JSON.stringify(f.commerce.productName())}, "category": ${JSON.stringify(f.commerce.department())}}}`],
  company_name: f => [`json`, `{"company": {"name": ${JSON.stringify(f.company.name())}, "country": "${f.location.countryCode()}"}}`],
  items_names: f => [`json`, `{"items": [{"name": ${JSON.stringify(f.commerce.productName())}, "qty": ${f.number.int({min: 1, max: 9})}, "unit_price": ${f.commerce.price()}}]}`],
  event_name: f => [`json`, `{"event": {"name": "${f.helpers.arrayElement(['checkout_started', 'Page Viewed', 'Signed Up', 'add_to_cart'])}", "ts": ${f.date.recent().getTime()}}}`],
  file_name: f => [`json`, `{"file": {"name": ${JSON.stringify(f.system.fileName())}, "size": ${f.number.int(99999)}}}`],
  app_name: f => [`json`, `{"app": {"name": ${JSON.stringify(f.commerce.productName())}, "version": "${f.system.semver()}"}}`],
  team_name: f => [`json`, `{"team": {"name": ${JSON.stringify(f.company.name())}, "members": ${f.number.int(50)}}}`],
  handle_keys: f => [`json`, `{"username": ${JSON.stringify(f.internet.username())}, "screen_name": ${JSON.stringify(f.internet.displayName())}, "bank_name": ${JSON.stringify(f.company.name() + ' Bank')}, "merchant_name": ${JSON.stringify(f.company.name())}, "host_name": "${f.internet.domainWord()}"}`],
  object_ids: f => [`json`, `{"order": {"id": "${f.string.uuid()}"}, "user": {"id": "${f.string.uuid()}"}, "imp": [{"id": "${f.number.int(9)}"}], "id": "${f.database.mongodbObjectId()}"}`],
  product_form: f => [`form`, `product_name=${encodeURIComponent(f.commerce.productName()).replace(/%20/g, '+')}&sku=${f.string.alphanumeric(8)}&qty=2`],
  dates_not_birth: f => [`json`, `{"created_at": "${f.date.past().toISOString()}", "delivery_date": "${f.date.soon().toISOString().slice(0, 10)}", "expires": "${String(f.number.int({min: 1, max: 12})).padStart(2, '0')}/${f.number.int({min: 26, max: 33})}"}`],
  date_query: f => [`query`, `/reports?from=${f.date.past().toISOString().slice(0, 10)}&to=${f.date.recent().toISOString().slice(0, 10)}&tz=UTC`],
  date_text: f => [`free_text`, `${f.helpers.arrayElement(['The meeting is on', 'Released on', 'Invoice dated', 'Delivered'])} ${f.date.anytime().toLocaleDateString(f.helpers.arrayElement(['en-GB', 'en-US', 'de-DE']))}`],
  date_words_text: f => [`free_text`, `${f.helpers.arrayElement(['Order placed on', 'The store opened on', 'Offer valid until', 'Shipped'])} ${f.helpers.arrayElement([d => `${d.getUTCDate()} ${d.toLocaleString('en-US', {month: 'long', timeZone: 'UTC'})} ${d.getUTCFullYear()}`, d => `${d.toLocaleString('en-US', {month: 'long', timeZone: 'UTC'})} ${d.getUTCDate()}, ${d.getUTCFullYear()}`])(f.date.anytime())}`],
  uuid_request_ids: f => [`json`, `{"request_id": "${f.string.uuid()}", "correlation_id": "${f.string.uuid()}", "order_id": "${f.string.uuid()}"}`],
  uuid_headers: f => [`headers`, `Host: api.example.com\r\nX-Request-Id: ${f.string.uuid()}\r\nIdempotency-Key: ${f.string.uuid()}\r\nX-Correlation-Id: ${f.string.uuid()}\r\n`],
  uuid_text: f => [`free_text`, `Job ${f.string.uuid()} finished in ${f.number.int(999)} ms`],
  device_model: f => [`json`, `{"device": {"model": "${f.helpers.arrayElement(['Pixel 8', 'iPhone15,2', 'SM-G998B', 'ThinkPad X1'])}", "os": "${f.helpers.arrayElement(['Android 14', 'iOS 17.2', 'Windows 11'])}", "os_build": "10.0.${f.number.int({min: 10000, max: 22631})}.${f.number.int(4000)}"}}`],
  mac_lookalikes: f => [`json`, `{"build_id": "${f.string.hexadecimal({length: 2, prefix: '', casing: 'lower'})}:${f.string.hexadecimal({length: 2, prefix: '', casing: 'lower'})}:${f.string.hexadecimal({length: 2, prefix: '', casing: 'lower'})}:${f.string.hexadecimal({length: 2, prefix: '', casing: 'lower'})}:${f.string.hexadecimal({length: 2, prefix: '', casing: 'lower'})}", "time": "${f.date.anytime().toISOString().slice(11, 19)}", "color": "${f.color.rgb()}"}`],
  time_text: f => [`free_text`, `Lap times ${f.date.anytime().toISOString().slice(11, 19)} and ${f.date.anytime().toISOString().slice(11, 23)}`],
  imei_lookalike: f => [`free_text`, `Tracking ${f.string.numeric(15)} shipped`],
  coord_wrong_keys: f => [`json`, `{"chart": {"x": ${f.location.latitude()}, "y": ${f.location.longitude()}}, "ratio": "${f.location.latitude()},${f.location.longitude()}", "temperature_c": ${f.number.float({min: -20, max: 45, fractionDigits: 2})}}`],
  coord_price: f => [`json`, `{"price": ${f.commerce.price()}, "discount": ${f.number.float({min: 0, max: 90, fractionDigits: 2})}, "range": "${f.number.float({min: 1, max: 80, fractionDigits: 3})},${f.number.float({min: 1, max: 170, fractionDigits: 3})}"}`],
  layout_arrays: f => [`json`, `{"widget": {"position": [${f.number.float({min: 0, max: 180, fractionDigits: 1})}, ${f.number.float({min: 0, max: 90, fractionDigits: 2})}], "size": [${f.number.int({min: 50, max: 800})}, ${f.number.int({min: 50, max: 600})}], "location": [${f.number.int(20)}, ${f.number.int(20)}]}, "scores": [${f.number.float({min: -90, max: 90, fractionDigits: 5})}, ${f.number.float({min: -180, max: 180, fractionDigits: 5})}]}`],
  coord_query: f => [`query`, `/chart/render?x=${f.location.latitude()}&y=${f.location.longitude()}&zoom=${f.number.int({min: 1, max: 18})}&scale=${f.number.float({min: 0.5, max: 4, fractionDigits: 2})}`],
  coord_text: f => [`free_text`, `Scores: ${f.number.float({min: 10, max: 90, fractionDigits: 3})}, ${f.number.float({min: 10, max: 170, fractionDigits: 3})} and ${f.number.float({min: 1, max: 9, fractionDigits: 2})}`],
  nino_bad_prefix: f => [`free_text`, `${f.helpers.arrayElement(['Ref', 'Code', 'Part'])} ${f.helpers.arrayElement(['BG', 'GB', 'NK', 'KN', 'TN', 'NT', 'ZZ', 'DA', 'FA', 'QA', 'UA', 'VA', 'IA', 'AO', 'AD'])}${f.string.numeric(6)}${f.helpers.arrayElement(['A', 'B', 'C', 'D'])}`],
  nino_bad_suffix: f => [`json`, `{"part_no": "${f.string.alpha({length: 2, casing: 'upper'})}${f.string.numeric(6)}${f.helpers.arrayElement(['E', 'F', 'G', 'K', 'X', 'Z'])}", "qty": ${f.number.int(20)}}`],
  uk_postcode_reg: f => [`free_text`, `Ship to ${f.location.city()} ${f.helpers.arrayElement(['SW1A 1AA', 'EC1A 1BB', 'W1A 0AX', 'M1 1AE', 'B33 8TH'])}, vehicle ${f.string.alpha({length: 2, casing: 'upper'})}${f.number.int({min: 10, max: 75})} ${f.string.alpha({length: 3, casing: 'upper'})}`],
  hashes: f => [`json`, `{"sha256": "${f.string.hexadecimal({length: 64, prefix: '', casing: 'lower'})}", "commit": "${f.git.commitSha()}", "etag": "${f.string.hexadecimal({length: 32, prefix: '', casing: 'lower'})}"}`],
  commit_text: f => [`free_text`, `Merged ${f.git.commitSha()} into ${f.helpers.arrayElement(['main', 'release/2.4', 'develop'])}: ${f.git.commitMessage()}`],
  csrf_form: f => [`form`, `q=${f.word.noun()}&page=${f.number.int({min: 1, max: 9})}&csrf_token=${f.string.alphanumeric(32)}`],
  csrf_header: f => [`headers`, `Host: app.example.com\r\nX-CSRF-Token: ${f.string.alphanumeric(40)}\r\nAccept: text/html\r\n`],
  token_meta: f => [`json`, `{"token_type": "Bearer", "expires_in": ${f.number.int({min: 300, max: 86400})}, "scope": "read write", "next_cursor": "${f.string.numeric(8)}"}`],
  base64_image: f => [`json`, `{"thumbnail": "data:image/png;base64,${Buffer.from(f.string.alphanumeric(60)).toString('base64')}", "alt": ${JSON.stringify(f.lorem.words(3))}}`],
  version_strings: f => [`headers`, `Host: cdn.example.com\r\nUser-Agent: ${f.internet.userAgent()}\r\nX-Client-Version: ${f.system.semver()}\r\nAccept: */*\r\n`],
};
for (let n = 0; n < N; n++) {
  const loc = locales[n % locales.length]; const f = allFakers[loc];
  for (const [kind, g] of Object.entries(negs)) {
    f.seed(seed * 7919 + 500000 + n * 64 + Object.keys(negs).indexOf(kind));
    let r; try { r = g(f); } catch (e) { continue; }
    out.push(JSON.stringify({id: `fkn-${seed}-${k++}`, text: r[1], entities: [], ignore: [], label_scope: "all", context: r[0], negative_kind: "faker_" + kind, source: "faker-js"}));
  }
}
console.log(out.join('\n'));
