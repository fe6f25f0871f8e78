/**
 * Ed25519 (noble and Node, valid and invalid signatures) and sealing figures. The verify
 * figures decide which implementation the node uses: the faster, since both accept exactly
 * the same signatures (test/mesh/ed25519.test.ts).
 */
import { defaultEd25519, nobleEd25519, nodeEd25519 } from '../mesh/ed25519.ts';
import { open, seal, sealOverhead } from '../mesh/seal.ts';
import { seededRandom } from '../test/helpers/random.ts';
import { makeAuthors } from './fixtures.ts';
import { rate, type Report } from './harness.ts';

export function benchCrypto(report: Report, budgetMs: number): void {
  report.section('Ed25519');
  const random = seededRandom(1);
  // Several keys and messages, so no cache sees only one input.
  const inputs = Array.from({ length: 16 }, () => {
    const seed = random(32);
    const message = random(120);
    const signature = nobleEd25519.sign(message, seed);
    const forged = signature.slice();
    forged[40]! ^= 1;
    return { seed, message, signature, forged, publicKey: nobleEd25519.publicKey(seed) };
  });
  const at = (i: number) => inputs[i % inputs.length]!;
  const verify: { [name: string]: number } = {};
  for (const scheme of [nobleEd25519, nodeEd25519]) {
    report.add(`ed25519 sign, ${scheme.name}`, rate((i) => scheme.sign(at(i).message, at(i).seed), budgetMs), 'signatures/s');
    verify[scheme.name] = rate((i) => scheme.verify(at(i).signature, at(i).message, at(i).publicKey), budgetMs);
    report.add(`ed25519 verify (valid), ${scheme.name}`, verify[scheme.name]!, 'verifies/s');
    report.add(`ed25519 verify (forged: refused), ${scheme.name}`, rate((i) => scheme.verify(at(i).forged, at(i).message, at(i).publicKey), budgetMs), 'verifies/s');
  }
  report.add('ed25519 verify speed-up, node over noble', verify['node']! / verify['noble']!, 'x');
  const faster = verify['node']! > verify['noble']! ? 'node' : 'noble';
  report.note(`The node verifies with: ${defaultEd25519.name} (faster here: ${faster}; both agree on every vector).`);
  report.note('A refused signature costs node a noble check too (the cofactor rule, see mesh/ed25519.ts).');

  report.section('Sealing (X25519 + HKDF + ChaCha20-Poly1305)');
  const [author, ...readers] = makeAuthors(6, 2);
  const context = author!.id;
  const plaintext = random(100);
  for (const n of [1, 5]) {
    const keys = readers.slice(0, n).map((r) => r.agreementKey);
    report.add(`seal + open, 100-byte plaintext, ${n} recipient${n > 1 ? 's' : ''}`, rate(() => open(seal(plaintext, keys, context), readers[0]!, context), budgetMs), 'round trips/s');
  }
  const sealed = seal(plaintext, [readers[0]!.agreementKey], context);
  report.add('open alone, 1 recipient', rate(() => open(sealed, readers[0]!, context), budgetMs), 'opens/s');
  report.add('sealed payload overhead, 1 recipient', sealOverhead(1), 'bytes');
  report.add('sealed payload overhead, each further recipient', sealOverhead(2) - sealOverhead(1), 'bytes');
}
