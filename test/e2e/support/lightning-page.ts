// A Lightning-like record page for the e2e: the LEX element names and nesting a content script meets (isolated world), progressive rendering, pushState navigation that leaves the old page hidden, and a docked e-mail composer.
export interface ContactFixture {
  id: string;
  name: string;
  email: string;
  phone: string;
  title: string;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

function recordPage(contact: ContactFixture): string {
  return `
  <one-record-home-flexipage2>
    <records-lwc-highlights-panel><records-highlights2>
      <div slot="primaryField"><lightning-formatted-name>${esc(contact.name)}</lightning-formatted-name></div>
      <div slot="secondaryFields"><records-highlights-details-item><p>Title</p><lightning-formatted-text>${esc(contact.title)}</lightning-formatted-text></records-highlights-details-item></div>
    </records-highlights2></records-lwc-highlights-panel>
    <records-lwc-detail-panel><records-base-record-form><records-lwc-record-layout>
      <records-record-layout-section><records-record-layout-row>
        <records-record-layout-item field-label="Name"><span slot="outputField"><lightning-formatted-name>${esc(contact.name)}</lightning-formatted-name></span></records-record-layout-item>
        <records-record-layout-item field-label="Phone"><span slot="outputField"><lightning-formatted-phone><a href="tel:${esc(contact.phone)}">${esc(contact.phone)}</a></lightning-formatted-phone></span></records-record-layout-item>
      </records-record-layout-row><records-record-layout-row>
        <records-record-layout-item field-label="Email" class="email-slot"><span slot="outputField"><div class="slds-form-element__static">Loading…</div></span></records-record-layout-item>
      </records-record-layout-row></records-record-layout-section>
    </records-lwc-record-layout></records-base-record-form></records-lwc-detail-panel>
    <lst-related-list-single-container><table class="related"><tbody></tbody></table></lst-related-list-single-container>
  </one-record-home-flexipage2>`;
}

function emailField(contact: ContactFixture): string {
  return `<emailui-formatted-email-contact><emailui-formatted-email-wrapper><lightning-formatted-email><a href="mailto:${esc(contact.email)}">${esc(contact.email)}</a></lightning-formatted-email></emailui-formatted-email-wrapper></emailui-formatted-email-contact>`;
}

/** The whole app shell with one contact shown; the others are reachable by SPA navigation. */
export function lightningAppHtml(contacts: ContactFixture[], shownId: string): string {
  const data = JSON.stringify(Object.fromEntries(contacts.map((c) => [c.id, { page: recordPage(c), email: emailField(c) }])));
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Contact | Salesforce</title>
<style>
 body { font-family: Arial, sans-serif; margin: 0; background: #f3f3f3; }
 one-appnav { display: block; background: #0176d3; color: #fff; padding: 8px 16px; }
 one-appnav a { color: #fff; margin-right: 16px; }
 .oneContent { display: none; padding: 16px; } .oneContent.active { display: block; }
 records-record-layout-item { display: block; margin: 6px 0; } records-record-layout-item::before { content: attr(field-label) ": "; color: #555; }
 records-highlights2 { display: block; background: #fff; padding: 12px; font-size: 20px; margin-bottom: 12px; }
 records-lwc-detail-panel { display: block; background: #fff; padding: 12px; }
 lst-related-list-single-container { display: block; height: 120px; overflow: auto; margin-top: 12px; background: #fff; font-size: 12px; }
 force-docking-panel { display: block; position: fixed; left: 16px; bottom: 16px; width: 520px; background: #fff; border: 1px solid #aaa; padding: 8px; }
 .ql-editor { min-height: 80px; border: 1px solid #ccc; padding: 6px; }
</style></head>
<body>
<one-appnav><one-app-nav-bar>
  ${contacts.map((c) => `<one-app-nav-bar-item-root><a href="/lightning/r/Contact/${c.id}/view" data-nav="${c.id}">${esc(c.name)}</a></one-app-nav-bar-item-root>`).join('')}
</one-app-nav-bar></one-appnav>
<div class="viewport"></div>
<force-docking-panel>
  <div>New Email</div>
  <input name="subject" placeholder="Subject" style="width: 100%">
  <lightning-input-rich-text><div class="ql-container"><div class="ql-editor" contenteditable="true" role="textbox"></div></div></lightning-input-rich-text>
  <lightning-button><button class="slds-button slds-button_brand" type="button">Send</button></lightning-button>
  <span class="send-result"></span>
</force-docking-panel>
<script>
  const records = ${data};
  const viewport = document.querySelector('.viewport');
  function show(id) {
    for (const old of document.querySelectorAll('.oneContent.active')) old.classList.remove('active');
    let page = document.querySelector('.oneContent[data-record="' + id + '"]');
    if (!page) {
      page = document.createElement('div');
      page.className = 'oneContent';
      page.dataset.record = id;
      page.innerHTML = records[id].page;
      viewport.append(page);
      // Lightning renders progressively: a related list streams in (1,000 rows in 20 batches of DOM churn), and the
      // e-mail field replaces its placeholder only after that.
      const body = page.querySelector('table.related tbody');
      for (let batch = 0; batch < 20; batch++) {
        setTimeout(() => {
          const rows = [];
          for (let i = 0; i < 50; i++) rows.push('<tr><td><a href="#">Activity ' + (batch * 50 + i) + '</a></td><td>Call</td><td>2026-10-0' + (i % 9 + 1) + '</td></tr>');
          body.insertAdjacentHTML('beforeend', rows.join(''));
        }, batch * 5);
      }
      setTimeout(() => { page.querySelector('.email-slot [slot="outputField"]').innerHTML = records[id].email; }, 150);
    }
    page.classList.add('active');
  }
  document.addEventListener('click', (e) => {
    const link = e.target.closest('a[data-nav]');
    if (!link) return;
    e.preventDefault();
    history.pushState({}, '', link.getAttribute('href'));
    show(link.dataset.nav);
  });
  addEventListener('popstate', () => show(location.pathname.split('/')[4]));
  document.querySelector('force-docking-panel button').addEventListener('click', () => {
    document.querySelector('.send-result').textContent = 'Email sent';
  });
  show(${JSON.stringify(shownId)});
</script>
</body></html>`;
}

/** An EHR-like page: the EHR's own chrome; the extension only adds its launcher. */
export function ehrHtml(): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>EHR · Inbox</title>
<style>body { font-family: Arial, sans-serif; margin: 0; } header { background: #2e4a62; color: #fff; padding: 10px 16px; } main { padding: 16px; }</style>
</head><body><header>Example EHR · Clinician inbox</header><main><h2>Inbox</h2><p>3 results to review, 2 refill requests.</p></main></body></html>`;
}
