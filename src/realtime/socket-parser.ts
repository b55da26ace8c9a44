import { Decoder, Encoder as BaseEncoder, PacketType, protocol, type Packet } from 'socket.io-parser';

/**
 * A value already serialized: the text of a JSON value, written into a packet as it is. For a
 * caller that holds the parts as JSON already (a broadcast's kept blocks, a room event read from
 * the adapter's stream), so they are not parsed and serialized again on their way to the sockets.
 * Anything else that serializes it (`JSON.stringify`) gets the value it stands for.
 */
export class JsonText {
  constructor(readonly text: string) {}

  toJSON(): unknown {
    return JSON.parse(this.text) as unknown;
  }
}

/**
 * socket.io-parser's encoder, with one shortcut: an event packet with a `JsonText` argument is
 * written by splicing the text in, with no binary scan of the payload and no second serialization.
 * The string is the one the stock encoder writes for the parsed value (`2/nsp,id[args]`), so
 * every client decodes it with the stock parser. Every other packet goes to the stock encoder.
 */
class Encoder extends BaseEncoder {
  override encode(packet: Packet): unknown[] {
    const args = packet.data as unknown[] | undefined;
    if (packet.type !== PacketType.EVENT || !Array.isArray(args) || !args.some((arg) => arg instanceof JsonText))
      return super.encode(packet);
    let text = String(PacketType.EVENT);
    if (packet.nsp && packet.nsp !== '/') text += `${packet.nsp},`;
    if (packet.id !== undefined && packet.id !== null) text += String(packet.id);
    // An argument JSON cannot hold (undefined, a function) is `null` in an array, as JSON.stringify writes it.
    const parts = args.map((arg) => (arg instanceof JsonText ? arg.text : ((JSON.stringify(arg) as string | undefined) ?? 'null')));
    return [`${text}[${parts.join(',')}]`];
  }
}

/** The `parser` option of our Socket.IO servers: the stock decoder, the encoder above. */
export const socketParser = { protocol, PacketType, Encoder, Decoder };
