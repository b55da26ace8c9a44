import { eventLogOnce, keySlot, redisKeys } from '../../src/lib/redis-keys';

/**
 * Key names are a stored format: a deployment that upgrades keeps reading what the version before
 * wrote (windows, leases, event logs, device presence). Each name is pinned here; a change must be
 * deliberate, with a release note.
 */
describe('redisKeys', () => {
  const keys = redisKeys('sb');

  test('every key family keeps the name running deployments already hold', () => {
    expect({
      rateWindow: keys.rateWindow('login', 'ip:1.2.3.4'),
      generationMinuteWindow: keys.generationMinuteWindow('u1'),
      generationHourWindow: keys.generationHourWindow('u1'),
      generationSlots: keys.generationSlots('u1'),
      loginAccount: keys.loginAccount('fails', 'h1'),
      dashboardLogin: keys.dashboardLogin('lock', 'h2'),
      fairShare: keys.fairShare('flows', 'u1'),
      sseLeases: keys.sseLeases('u1'),
      socketLeases: keys.socketLeases('u1'),
      generationEvents: keys.generationEvents('g1'),
      generationBlocks: keys.generationBlocks('g1'),
      flowExecutionEvents: keys.flowExecutionEvents('x1'),
      chatEvents: keys.chatEvents('m1'),
      notesEvents: keys.notesEvents('s1'),
      eventLogOnce: eventLogOnce(keys.generationEvents('g1')),
      generationIdempotency: keys.generationIdempotency('u1', 'k1'),
      oauthState: keys.oauthState('j1'),
      agentRunFrames: keys.agentRunFrames('r1'),
      agentRunOwner: keys.agentRunOwner('r1'),
      agentRunBytes: keys.agentRunBytes('r1'),
      journey: keys.journey('j1'),
      journeyAnswer: keys.journeyAnswer('j1', 2),
      cancelRequest: keys.cancelRequest('chat', 'm1'),
      reaperLock: keys.reaperLock(),
      devicesOfUser: keys.devicesOfUser('u1'),
      deviceNode: keys.deviceNode('host:1:abc'),
      canvasSeq: keys.canvasSeq('c1'),
      canvasLog: keys.canvasLog('c1'),
      canvasGone: keys.canvasGone('c1'),
      socketIoStream: keys.socketIoStream(),
      socketIoChannel: keys.socketIoChannel('/canvas'),
      socketIoNodeChannel: keys.socketIoNodeChannel('/canvas', 'a1'),
      socketIoSession: keys.socketIoSession('p1'),
      workerLeases: keys.workerLeases(),
      bullmqPrefix: keys.bullmqPrefix(),
      cancelChannel: keys.cancelChannel(),
      cursorChannel: keys.cursorChannel(),
      revocationChannel: keys.revocationChannel(),
      wsRelayReply: keys.wsRelayReply('n1'),
      wsRelayDevice: keys.wsRelayDevice('u1', 'd1'),
      wsRelayUser: keys.wsRelayUser('u1'),
      wsRelaySession: keys.wsRelaySession('s1'),
    }).toEqual({
      rateWindow: 'sb:rl:login:{ip:1.2.3.4}',
      generationMinuteWindow: 'sb:rl:gen:{u1}:m',
      generationHourWindow: 'sb:rl:gen:{u1}:h',
      generationSlots: 'sb:gen:active:{u1}',
      loginAccount: 'sb:login:fails:{h1}',
      dashboardLogin: 'sb:dashboard-login:lock:{h2}',
      fairShare: 'sb:fair:flows:{u1}',
      sseLeases: 'sb:sse:user:{u1}',
      socketLeases: 'sb:sockets:user:{u1}',
      generationEvents: 'sb:gen:{g1}:events',
      generationBlocks: 'sb:gen:{g1}:blocks',
      flowExecutionEvents: 'sb:flowexec:{x1}:events',
      chatEvents: 'sb:chat:{m1}:events',
      notesEvents: 'sb:notes:{s1}:events',
      eventLogOnce: 'sb:gen:{g1}:events:once',
      generationIdempotency: 'sb:idem:gen:{u1}:k1',
      oauthState: 'sb:oauth-state:{j1}',
      agentRunFrames: 'sb:agent-run:{r1}:frames',
      agentRunOwner: 'sb:agent-run:{r1}:owner',
      agentRunBytes: 'sb:agent-run:{r1}:bytes',
      journey: 'sb:journey:{j1}',
      journeyAnswer: 'sb:journey:{j1}:answer:2',
      cancelRequest: 'sb:cancel:chat:{m1}',
      reaperLock: 'sb:reaper:lock',
      devicesOfUser: 'sb:devices:user:{u1}',
      deviceNode: 'sb:devices:node:{host:1:abc}',
      canvasSeq: 'sb:canvas:{c1}:seq',
      canvasLog: 'sb:canvas:{c1}:log',
      canvasGone: 'sb:canvas:{c1}:gone',
      socketIoStream: 'sb:socket.io',
      socketIoChannel: 'sb:socket.io#/canvas#',
      socketIoNodeChannel: 'sb:socket.io#/canvas#a1#',
      socketIoSession: 'sb:sio:session:{p1}',
      workerLeases: 'sb:worker-leases',
      bullmqPrefix: '{sb}:bull',
      cancelChannel: 'sb:cancel',
      cursorChannel: 'sb:canvas-cursor',
      revocationChannel: 'sb:revoked',
      wsRelayReply: 'sb:ws-relay:reply:n1',
      wsRelayDevice: 'sb:ws-relay:device:u1:d1',
      wsRelayUser: 'sb:ws-relay:user:u1',
      wsRelaySession: 'sb:ws-relay:session:s1',
    });
  });

  test('keys one script touches together carry the same grouping id, so one hash tag puts them in one slot', () => {
    // Each group: the keys of one script or MULTI, and the id that `slot` groups them by.
    const groups: Array<[string, string[]]> = [
      ['u1', [keys.generationMinuteWindow('u1'), keys.generationHourWindow('u1'), keys.generationSlots('u1')]],
      ['h1', [keys.loginAccount('fails', 'h1'), keys.loginAccount('lock', 'h1')]],
      ['g1', [keys.generationEvents('g1'), eventLogOnce(keys.generationEvents('g1'))]],
      ['x1', [keys.flowExecutionEvents('x1'), eventLogOnce(keys.flowExecutionEvents('x1'))]],
      ['r1', [keys.agentRunFrames('r1'), keys.agentRunOwner('r1'), keys.agentRunBytes('r1')]],
      ['c1', [keys.canvasSeq('c1'), keys.canvasLog('c1'), keys.canvasGone('c1')]],
    ];
    for (const [id, group] of groups) {
      for (const key of group) expect(key).toContain(`{${id}}`);
      expect(new Set(group.map(keySlot)).size).toBe(1);
    }
    const budget = [
      keys.budgetWindow('u1', 'h1'),
      keys.budgetWindow('u1', 'm202601'),
      keys.budgetReservation('u1', 'r'),
      keys.budgetReaped('u1', 'r'),
    ];
    expect(new Set(budget.map(keySlot)).size).toBe(1);
  });

  test('keySlot is the slot Redis Cluster computes (CRC16 mod 16384, hash tag first)', () => {
    // Values from CLUSTER KEYSLOT on a Redis 7 cluster.
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
  });
});
