import { callHttpTool, HttpToolError, isPrivateAddress } from '../../src/flows/http-tool';

/**
 * The private-address guard of agentflow HTTP tools, for the IPv6 spellings that carry an IPv4
 * address (or lead to one through a translator or tunnel): each is refused as an address and as a
 * tool URL, before any connection is tried; public IPv6 and public mapped IPv4 still pass.
 */
describe('HTTP tool private addresses: IPv4 inside IPv6', () => {
  const refused: Array<[spelling: string, range: string]> = [
    ['::127.0.0.1', '::/96 (IPv4-compatible, dotted)'],
    ['::7f00:1', '::/96 (IPv4-compatible, hex)'],
    ['0:0:0:0:0:0:7f00:1', '::/96 (uncompressed)'],
    ['::a9fe:a9fe', '::/96 (the metadata address)'],
    ['::8.8.8.8', '::/96 (even a public IPv4 inside)'],
    ['::', 'the unspecified address'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'IPv4-mapped, dotted'],
    ['::ffff:7f00:1', 'IPv4-mapped, hex'],
    ['0:0:0:0:0:ffff:a00:1', 'IPv4-mapped 10.0.0.1, uncompressed'],
    ['::ffff:0:127.0.0.1', 'IPv4-translated ::ffff:0:0:0/96, dotted'],
    ['::ffff:0:a9fe:a9fe', 'IPv4-translated, hex'],
    ['64:ff9b::127.0.0.1', 'NAT64 64:ff9b::/96'],
    ['64:ff9b::7f00:1', 'NAT64 64:ff9b::/96, hex'],
    ['64:ff9b:1::7f00:1', 'local-use NAT64 64:ff9b:1::/48'],
    ['64:ff9b:1:ffff::a00:1', 'local-use NAT64, another spot of the /48'],
    ['2002:7f00:1::', '6to4 2002::/16 (127.0.0.1)'],
    ['2002:a9fe:a9fe::1', '6to4 (169.254.169.254)'],
    ['100::1', 'discard 100::/64'],
    ['100::ffff:7f00:1', 'discard 100::/64, with an IPv4 in the low bits'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'Teredo 2001::/32 (client 127.0.0.1, obfuscated)'],
    ['2001::1', 'Teredo 2001::/32'],
    ['fd00::1', 'unique local'],
    ['fe80::1', 'link-local'],
  ];

  test.each(refused)('%s is private (%s)', (spelling) => {
    expect(isPrivateAddress(spelling)).toBe(true);
  });

  test.each(refused)('a tool on http://[%s]/ is refused before connecting (%s)', async (spelling) => {
    const url = new URL('http://example.test/x');
    url.hostname = `[${spelling}]`;
    const call = callHttpTool({ name: 'probe', description: 'Probe', method: 'GET', url: url.href }, {}, [url.origin], {
      timeoutMs: 2_000,
      maxResponseBytes: 1_000,
      privateOrigins: [],
    });
    await expect(call).rejects.toBeInstanceOf(HttpToolError);
    await expect(call).rejects.toMatchObject({ code: 'private_address' });
  });

  test.each([
    ['2606:4700:4700::1111', 'a public IPv6 address'],
    ['2a00:1450:4001:82a::200e', 'another public IPv6 address'],
    ['::ffff:8.8.8.8', 'IPv4-mapped public address'],
    ['::ffff:808:808', 'IPv4-mapped public address, hex'],
    ['2001:4860:4860::8888', 'public, just outside Teredo 2001::/32'],
    ['100:0:0:1::1', 'just outside 100::/64'],
  ])('%s is not private (%s)', (spelling) => {
    expect(isPrivateAddress(spelling)).toBe(false);
  });

  test('an origin the operator opened to private addresses may use these spellings', async () => {
    const url = 'http://[::127.0.0.1]:9/';
    const origin = new URL(url).origin;
    const call = callHttpTool({ name: 'probe', description: 'Probe', method: 'GET', url }, {}, [origin], {
      timeoutMs: 2_000,
      maxResponseBytes: 1_000,
      privateOrigins: [origin],
    });
    // Not refused as private: the connection itself is tried (and fails, nothing listens there).
    await expect(call).rejects.not.toMatchObject({ code: 'private_address' });
  });
});
