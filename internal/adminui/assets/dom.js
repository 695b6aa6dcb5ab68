// DOM helpers. Text always goes in as text: nothing here parses HTML, so
// a queue named "<script>" shows as those characters.

// el builds an element: attrs are set with setAttribute (on* handlers
// are refused; use on()), children are nodes or strings (text nodes).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';

// svg builds an SVG element in the same way.
export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) throw new Error('use on() for ' + k);
    e.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(e, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// on adds a listener and returns the element.
export function on(e, type, fn) {
  e.addEventListener(type, fn);
  return e;
}

// clear removes every child of e.
export function clear(e) {
  e.replaceChildren();
  return e;
}

// fmt formats a number for a table: integers with thousands separators,
// others with up to 4 significant decimals; null/undefined as "-".
export function fmt(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  if (Number.isInteger(x)) return x.toLocaleString('en-US');
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e9)) return x.toExponential(3);
  return x.toLocaleString('en-US', { maximumFractionDigits: 4 });
}

// rate formats a per-second rate.
export function rate(x) {
  if (x === null || x === undefined) return '-';
  return x.toLocaleString('en-US', { maximumFractionDigits: x < 10 ? 2 : 0 });
}

// duration formats milliseconds as "3.2 s", "4 min 10 s", "2 h 5 min".
export function duration(ms) {
  if (!ms) return '-';
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' min ' + Math.floor(s % 60) + ' s';
  const h = Math.floor(m / 60);
  if (h < 48) return h + ' h ' + (m % 60) + ' min';
  return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
}

// bytes formats a byte count.
export function bytes(n) {
  if (!n) return '0';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
}

// cell is a table cell; num right-aligns it; field names it for tests
// and scripts (data-field).
export function cell(value, { num = false, field, cls } = {}) {
  const classes = [num ? 'num' : '', cls || ''].join(' ').trim();
  return el('td', { class: classes || undefined, 'data-field': field }, value);
}

// table builds a table with a header row and the given rows.
export function table(headers, rows, attrs = {}) {
  return el('table', attrs,
    el('thead', {}, el('tr', {}, headers.map(h => typeof h === 'string'
      ? el('th', {}, h) : el('th', { class: h.num ? 'num' : undefined }, h.label)))),
    el('tbody', {}, rows));
}

// fact is a labelled value.
export function fact(label, value, field) {
  return el('div', { class: 'fact' }, el('span', { class: 'label' }, label),
    el('span', { class: 'value', 'data-field': field }, value));
}
