// Reads and drives our UI inside closed shadow roots through the DevTools protocol (Playwright locators stop at closed roots; CDP's pierced DOM does not).
import type { CDPSession, Page } from 'playwright-core';

interface DomNode {
  nodeId: number;
  nodeName: string;
}

export class ClosedShadow {
  private constructor(
    private readonly page: Page,
    private readonly cdp: CDPSession,
  ) {}

  static async attach(page: Page): Promise<ClosedShadow> {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('DOM.enable');
    return new ClosedShadow(page, cdp);
  }

  /** Shadow roots of our hosts (`data-secure-outreach="<feature>"`), in document order. Our hosts live in the light DOM. */
  async roots(feature: string): Promise<number[]> {
    const { root } = (await this.cdp.send('DOM.getDocument', { depth: 0 })) as { root: DomNode };
    const { nodeIds } = (await this.cdp.send('DOM.querySelectorAll', { nodeId: root.nodeId, selector: `[data-secure-outreach="${feature}"]` })) as { nodeIds: number[] };
    const found: number[] = [];
    for (const hostId of nodeIds) {
      const { node } = (await this.cdp.send('DOM.describeNode', { nodeId: hostId, depth: 1, pierce: true })) as { node: DomNode & { shadowRoots?: { backendNodeId: number }[] } };
      const backendNodeId = node.shadowRoots?.[0]?.backendNodeId;
      if (backendNodeId === undefined) continue;
      const pushed = (await this.cdp.send('DOM.pushNodesByBackendIdsToFrontend', { backendNodeIds: [backendNodeId] })) as { nodeIds: number[] };
      if (pushed.nodeIds[0]) found.push(pushed.nodeIds[0]);
    }
    return found;
  }

  private async find(feature: string, selector: string): Promise<number | null> {
    for (const rootId of await this.roots(feature)) {
      const { nodeId } = (await this.cdp.send('DOM.querySelector', { nodeId: rootId, selector })) as { nodeId: number };
      if (nodeId) return nodeId;
    }
    return null;
  }

  private async call<T>(nodeId: number, fn: string, ...args: unknown[]): Promise<T> {
    const { object } = (await this.cdp.send('DOM.resolveNode', { nodeId })) as { object: { objectId: string } };
    const { result } = (await this.cdp.send('Runtime.callFunctionOn', {
      objectId: object.objectId,
      functionDeclaration: fn,
      arguments: args.map((value) => ({ value })),
      returnByValue: true,
    })) as { result: { value: T } };
    return result.value;
  }

  /** The text of the first match of `selector` in the feature's roots, or null. */
  async text(feature: string, selector = ':host > *'): Promise<string | null> {
    for (const rootId of await this.roots(feature)) {
      const sel = selector === ':host > *' ? 'style ~ *' : selector;
      const { nodeId } = (await this.cdp.send('DOM.querySelector', { nodeId: rootId, selector: sel })) as { nodeId: number };
      if (nodeId) return this.call<string>(nodeId, 'function () { return this.textContent; }');
    }
    return null;
  }

  /** Waits (bounded) until `predicate` holds for the feature's text at `selector`; returns that text. */
  async waitForText(feature: string, selector: string, predicate: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let last: string | null = null;
    while (Date.now() < deadline) {
      last = await this.text(feature, selector);
      if (last !== null && predicate(last)) return last;
      await this.page.waitForTimeout(50);
    }
    throw new Error(`${feature} ${selector}: condition not met within ${timeoutMs} ms (last text: ${JSON.stringify(last)})`);
  }

  /** Clicks an element with a real mouse event at its centre. */
  async click(feature: string, selector: string): Promise<void> {
    const nodeId = await this.waitForNode(feature, selector);
    await this.cdp.send('DOM.scrollIntoViewIfNeeded', { nodeId });
    const { model } = (await this.cdp.send('DOM.getBoxModel', { nodeId })) as { model: { content: number[] } };
    const [x1, y1, , , x3, y3] = model.content;
    await this.page.mouse.click((x1! + x3!) / 2, (y1! + y3!) / 2);
  }

  /** Chooses an option of a <select> (by value) the way a user's pick would: value set, change dispatched. */
  async select(feature: string, selector: string, value: string): Promise<void> {
    const nodeId = await this.waitForNode(feature, selector);
    const ok = await this.call<boolean>(
      nodeId,
      'function (v) { if (![...this.options].some((o) => o.value === v)) return false; this.value = v; this.dispatchEvent(new Event("change", { bubbles: true })); return true; }',
      value,
    );
    if (!ok) throw new Error(`${selector} has no option ${value}`);
  }

  /** Focuses a field by clicking it and types with the keyboard. */
  async type(feature: string, selector: string, text: string): Promise<void> {
    await this.click(feature, selector);
    await this.page.keyboard.type(text);
  }

  async waitForNode(feature: string, selector: string, timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const nodeId = await this.find(feature, selector);
      if (nodeId) {
        const enabled = await this.call<boolean>(nodeId, 'function () { return !this.disabled; }');
        if (enabled) return nodeId;
      }
      await this.page.waitForTimeout(50);
    }
    throw new Error(`${feature} ${selector}: no enabled element within ${timeoutMs} ms`);
  }

  async detach(): Promise<void> {
    await this.cdp.detach();
  }
}
