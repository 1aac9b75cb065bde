import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Agent, buildConnector } from 'undici';

/** Thrown when an export would connect to an address the operator's policy denies. */
export class OutboundDeniedError extends Error {
  constructor(readonly host: string, readonly address: string) {
    super(`connecting to ${host}${host === address ? '' : ` (${address})`} is denied by the outbound policy (exportAllow / exportDeny)`);
    this.name = 'OutboundDeniedError';
  }
}

function toList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr = '', bits] = c.split('/');
    const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}

/**
 * Where exports may connect: an address is denied when it is in `deny`, or
 * when `allow` is not empty and it is not in `allow`. Checked against the
 * resolved IP of every connection (DNS rebinding cannot slip a denied
 * address in after the check at create). IPv4-mapped IPv6 addresses are
 * checked as IPv4.
 */
export class OutboundPolicy {
  private readonly allow: BlockList | undefined;
  private readonly deny: BlockList;

  constructor(opts: { allow: readonly string[]; deny: readonly string[] }) {
    this.allow = opts.allow.length ? toList(opts.allow) : undefined;
    this.deny = toList(opts.deny);
  }

  /** Whether an IP address may be connected to. */
  permits(address: string): boolean {
    let addr = address.startsWith('[') ? address.slice(1, -1) : address;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
    if (mapped) addr = mapped[1] as string;
    const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (this.deny.check(addr, type)) return false;
    return this.allow ? this.allow.check(addr, type) : true;
  }

  /** Throws OutboundDeniedError unless a literal IP host is permitted (names are checked at connect). */
  checkHost(host: string): void {
    const h = host.startsWith('[') ? host.slice(1, -1) : host;
    if (isIP(h) && !this.permits(h)) throw new OutboundDeniedError(host, h);
  }

  /** A dns.lookup that fails with OutboundDeniedError when a resolved address is denied. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const denied = addresses.find((a) => !this.permits(a.address));
      if (denied) return callback(new OutboundDeniedError(hostname, denied.address) as NodeJS.ErrnoException, '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };

  /**
   * An undici Agent whose every connection is checked: literal IPs before
   * connecting, names through the policy lookup (Node skips lookup for
   * literal IPs, hence both).
   */
  agent(opts: Agent.Options = {}): Agent {
    const base = buildConnector({ lookup: this.lookup } as buildConnector.BuildOptions);
    return new Agent({
      ...opts,
      connect: (o, cb) => {
        try {
          this.checkHost(o.hostname);
        } catch (err) {
          cb(err as Error, null);
          return;
        }
        base(o, cb);
      },
    });
  }
}
