// The one header navigation of every staff page (operator desk, department, supervisor, FAQ editor):
// served at /static/nav.js. It shows the user's role in Japanese and, for users whose role reaches
// several screens, links to each (the current one marked aria-current). The server still checks
// every page; this only spares people typing addresses.

export const ROLE_LABELS = {
  operator: 'オペレーター', supervisor: 'スーパーバイザー', department: '担当課職員',
  admin: '管理者', faq_editor: 'FAQ編集者',
};

const SCREENS = {
  operator: { href: '/operator/', label: 'オペレーター画面' },
  supervisor: { href: '/supervisor/', label: '監督者画面' },
  department: { href: '/department/', label: '折り返し依頼（担当課）' },
  faq: { href: '/faq/editor/', label: 'FAQ編集' },
};

/** The screens a user reaches (the same rules as the server's page access). */
export function screensFor(me) {
  const list = {
    operator: ['operator'],
    supervisor: ['supervisor', 'operator'],
    department: ['department'],
    admin: ['department', 'supervisor'],
    faq_editor: [],
  }[me.role] || [];
  return me.faq_editor ? [...list, 'faq'] : list;
}

function currentScreen(path) {
  if (path.startsWith('/faq/editor/')) return 'faq';
  for (const key of ['supervisor', 'department', 'operator']) if (path.startsWith(`/${key}/`)) return key;
  return path === '/' ? 'operator' : null;
}

/** Put the role and (when there are several) the screens' links at the start of the page header. */
export function mountNav(me, path = location.pathname) {
  const header = document.querySelector('header.topbar');
  if (!header || document.getElementById('site-nav')) return;
  const nav = document.createElement('nav');
  nav.id = 'site-nav';
  nav.className = 'site-nav';
  nav.setAttribute('aria-label', '画面の切り替え');
  const role = document.createElement('span');
  role.id = 'role-label';
  role.className = 'role';
  role.textContent = `役割: ${ROLE_LABELS[me.role] || me.role}`;
  nav.append(role);
  const screens = screensFor(me);
  if (screens.length > 1) {
    const ul = document.createElement('ul');
    const here = currentScreen(path);
    for (const key of screens) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = SCREENS[key].href;
      a.textContent = SCREENS[key].label;
      if (key === here) a.setAttribute('aria-current', 'page');
      li.append(a);
      ul.append(li);
    }
    nav.append(ul);
  }
  header.prepend(nav);
}
