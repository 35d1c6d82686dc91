// The stylesheet our shadow roots carry (SLDS-like, self-contained: nothing is inherited from the page).
export const baseCss = `
:host { all: initial; }
* { box-sizing: border-box; font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
.badge { display: inline-flex; align-items: center; gap: 6px; margin-left: 8px; padding: 2px 8px; border-radius: 12px;
  font-size: 12px; line-height: 18px; border: 1px solid transparent; white-space: nowrap; vertical-align: middle; }
.ok { background: #e3f6e8; color: #194e24; border-color: #7cc68d; }
.warn { background: #fef1dc; color: #6b3f00; border-color: #f0b35a; }
.bad { background: #fde8e8; color: #7a1010; border-color: #e37b7b; }
.muted { background: #f3f3f3; color: #444; border-color: #ccc; }
.sub { opacity: .8; }
.panel { width: 380px; max-height: 80vh; overflow: auto; background: #fff; color: #181818; border: 1px solid #c9c9c9;
  border-radius: 8px; box-shadow: 0 6px 24px rgba(0,0,0,.18); font-size: 13px; }
.panel header { display: flex; justify-content: space-between; align-items: center; padding: 10px 12px; background: #0b5cab; color: #fff;
  border-radius: 8px 8px 0 0; font-weight: 600; }
.panel section { padding: 8px 12px; border-bottom: 1px solid #eee; }
.panel h3 { margin: 0 0 6px; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #555; }
label { display: block; margin: 6px 0 2px; font-size: 12px; color: #444; }
select, input, textarea { width: 100%; padding: 5px 6px; border: 1px solid #b0b0b0; border-radius: 4px; font-size: 13px; background: #fff; color: #181818; }
textarea { min-height: 56px; resize: vertical; }
button { padding: 6px 12px; border-radius: 4px; border: 1px solid #0b5cab; background: #0b5cab; color: #fff; font-size: 13px; cursor: pointer; }
button.secondary { background: #fff; color: #0b5cab; }
button.danger { background: #ba0517; border-color: #ba0517; }
button:disabled { opacity: .5; cursor: default; }
.row { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; }
.floating { position: fixed; right: 20px; bottom: 70px; z-index: 2147483000; }
.preview { border: 1px dashed #bbb; padding: 6px; background: #fafafa; white-space: pre-wrap; max-height: 160px; overflow: auto; }
.finding { color: #7a1010; }
.status { margin-top: 6px; }
.error { color: #ba0517; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px; margin: 8px 0; background: #fff; }
.kv { display: grid; grid-template-columns: 110px 1fr; gap: 2px 8px; font-size: 12px; }
.kv dt { color: #555; } .kv dd { margin: 0; }
.warning-box { margin-top: 4px; padding: 6px 8px; border-radius: 4px; background: #fde8e8; color: #7a1010; border: 1px solid #e37b7b; font-size: 12px; }
.warning-box .row { margin-top: 4px; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eee; font-size: 12px; }
`;
