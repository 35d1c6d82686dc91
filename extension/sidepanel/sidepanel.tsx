// The side panel: the clinician's approval queue next to any page (the EHR's included), after sign-in.
import { messagingClient } from '../api.js';
import { ApprovalGate } from '../ui/approval-gate.js';
import { mountPage, useSession } from '../ui/page-shell.js';
import { SignIn } from '../ui/sign-in.js';

const client = messagingClient();

function SidePanel() {
  const [session, setSession] = useSession();
  if (!session) return <div>Loading…</div>;
  return (
    <div>
      <h3>Secure Outreach · Approvals</h3>
      <SignIn session={session} onChange={setSession} />
      {session.signedIn && <ApprovalGate key={session.user?.username} client={client} />}
    </div>
  );
}

mountPage(() => <SidePanel />);
