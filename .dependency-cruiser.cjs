/**
 * The import directions of DESIGN.md, enforced by `npm run lint`.
 * An arrow is "may import"; each layer may also import itself and npm packages.
 *
 *   apps        -> gateway, firmware-bridge, simulations, mesh, radio, hardware
 *                  (simulations: apps/cli runs the simulator, `citizen sim`, SPEC §2)
 *   gateway     -> mesh, radio
 *   simulations -> mesh, radio, hardware
 *   mesh        -> radio
 *   firmware-bridge -> radio, hardware
 *   radio       -> hardware   (region plans are data in hardware/)
 *   hardware    -> (nothing)
 */
const layers = {
  apps: ['apps', 'gateway', 'firmware-bridge', 'simulations', 'mesh', 'radio', 'hardware'],
  gateway: ['gateway', 'mesh', 'radio'],
  simulations: ['simulations', 'mesh', 'radio', 'hardware'],
  mesh: ['mesh', 'radio'],
  'firmware-bridge': ['firmware-bridge', 'radio', 'hardware'],
  radio: ['radio', 'hardware'],
  hardware: ['hardware'],
};
const all = Object.keys(layers);

module.exports = {
  forbidden: [
    ...Object.entries(layers).map(([layer, allowed]) => ({
      name: `layer-${layer}`,
      comment: `${layer}/ may import only ${allowed.join(', ')} (DESIGN.md, "Layers and folders")`,
      severity: 'error',
      from: { path: `^${layer}/` },
      to: { path: `^(${all.filter((l) => !allowed.includes(l)).join('|') || '$^'}|test|bench)/` },
    })),
    {
      name: 'no-circular',
      comment: 'Circular imports make layers impossible to reason about.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-dev-dep',
      comment: 'Production code must not import devDependencies.',
      severity: 'error',
      from: { path: '^(apps|gateway|simulations|mesh|firmware-bridge|radio|hardware)/' },
      to: { dependencyTypes: ['npm-dev'], pathNot: ['node_modules/@types/'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
