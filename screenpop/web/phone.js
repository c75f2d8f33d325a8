// Phone numbers as people read them (served at /static/phone.js): 03-1234-5678, 090-1234-5678,
// 050-1234-5678, 045-123-4567. The server stores national digits; this only adds hyphens.
// Fixed numbers: Tokyo (03) and Osaka (06) have 2-digit area codes; other areas are shown 3-3-4
// (the full area-code table of the MIC is not needed for a readable number).

export function formatPhone(digits) {
  const d = String(digits || '');
  if (!/^0\d{9,10}$/.test(d)) return d; // not a national number: shown as stored
  if (d.length === 11) return `${d.slice(0, 3)}-${d.slice(3, 7)}-${d.slice(7)}`; // 070/080/090/050
  if (d[1] === '3' || d[1] === '6') return `${d.slice(0, 2)}-${d.slice(2, 6)}-${d.slice(6)}`;
  return `${d.slice(0, 3)}-${d.slice(3, 6)}-${d.slice(6)}`;
}
