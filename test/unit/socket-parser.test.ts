import { Decoder, Encoder, PacketType, type Packet } from 'socket.io-parser';
import { JsonText, socketParser } from '../../src/realtime/socket-parser';

const payload = { canvasId: 'c1', blocks: [{ type: 'text', content: 'naïve "quoted" ☃ \ud800 end' }], seq: 7 };

/** The packet as the stock encoder writes it for the parsed value, and as ours writes it with the JSON text. */
function both(packet: Omit<Packet, 'data'>, args: unknown[]) {
  const stock = new Encoder().encode({ ...packet, data: args } as Packet);
  const withText = args.map((arg) => (arg === payload ? new JsonText(JSON.stringify(payload)) : arg));
  const ours = new socketParser.Encoder().encode({ ...packet, data: withText } as Packet);
  return { stock, ours };
}

function decode(encoded: string): Promise<Packet> {
  return new Promise((resolve) => {
    const decoder = new Decoder();
    decoder.on('decoded', resolve);
    decoder.add(encoded);
  });
}

describe('socketParser', () => {
  test.each([
    ['the root namespace', { type: PacketType.EVENT, nsp: '/' }, ['blocks_bulk_added_chunk', payload]],
    ['a namespace, with the recovery offset after the payload', { type: PacketType.EVENT, nsp: '/canvas' }, ['e', payload, '1795-3']],
    ['an acknowledged event', { type: PacketType.EVENT, nsp: '/canvas', id: 12 }, ['e', payload]],
    ['an argument JSON cannot hold', { type: PacketType.EVENT, nsp: '/canvas' }, ['e', payload, undefined]],
  ])('%s: a JsonText argument is written as the stock encoder writes its value', async (_name, packet, args) => {
    const { stock, ours } = both(packet, args);
    expect(ours).toEqual(stock);
    const decoded = await decode(ours[0] as string);
    expect(decoded.data).toEqual(JSON.parse(JSON.stringify(args)));
  });

  test('packets without a JsonText go to the stock encoder, binary ones included', () => {
    const binary = { type: PacketType.EVENT, nsp: '/', data: ['file', Buffer.from([1, 2, 3])] } as Packet;
    expect(new socketParser.Encoder().encode(binary)).toEqual(new Encoder().encode(binary));
    const connect = { type: PacketType.CONNECT, nsp: '/canvas', data: { sid: 'abc' } } as Packet;
    expect(new socketParser.Encoder().encode(connect)).toEqual(new Encoder().encode(connect));
  });

  test('serialized anywhere else, a JsonText is the value it stands for', () => {
    expect(JSON.stringify({ missed: [new JsonText('{"a":[1,"x"]}')] })).toBe('{"missed":[{"a":[1,"x"]}]}');
  });
});
