// Records the closed shadow roots our UI attaches, so DOM tests can read what a user would see inside them.
export function captureClosedRoots(): { roots: ShadowRoot[]; of(feature: string): ShadowRoot[]; restore(): void } {
  const original = Element.prototype.attachShadow;
  const roots: ShadowRoot[] = [];
  Element.prototype.attachShadow = function (this: Element, init: ShadowRootInit) {
    const root = original.call(this, init);
    roots.push(root);
    return root;
  };
  return {
    roots,
    of: (feature) => roots.filter((r) => r.host.getAttribute('data-secure-outreach') === feature && r.host.isConnected),
    restore: () => {
      Element.prototype.attachShadow = original;
    },
  };
}
