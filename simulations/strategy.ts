/**
 * What a strategy is to the engine: something that runs on every node, is told when a person
 * writes a message and when a node powers off or on, and reports deliveries to the recorder.
 * The citizen strategy (real mesh nodes and sync) and the flood baseline both fit it, so
 * they run on the very same world.
 */
import type { Channel } from './channel.ts';
import type { Simulator } from './engine.ts';
import type { DeliveryRecorder } from './metrics.ts';
import type { Random } from './random.ts';
import type { Message, World } from './world.ts';

/** What a strategy gets to work with. */
export interface StrategyContext {
  sim: Simulator;
  channel: Channel;
  world: World;
  recorder: DeliveryRecorder;
  /** The strategy's own random stream (does not disturb the world's). */
  random: Random;
}

export interface Strategy {
  readonly name: string;
  /** True when the strategy runs promise-based code (the engine then settles the event loop between instants). */
  readonly async: boolean;
  /** Before virtual time starts; nodes that start offline have already been told. */
  start(): Promise<void> | void;
  /** A person writes `message` at its author's node, which is online. */
  originate(message: Message): void;
  /** Node `node` powers off (`false`) or back on (`true`). */
  setOnline(node: number, on: boolean): void;
  /** After the end of the run. */
  stop(): Promise<void> | void;
  /** Strategy-specific counters, added to the metrics under `detail`. */
  detail?(): { [name: string]: number };
}

export type StrategyFactory = (context: StrategyContext) => Strategy;
