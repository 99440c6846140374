// dependency-cruiser: the import rules that ESLint cannot see across files. Run by `npm run lint`
// (scripts/lint.sh) over src/, bench/ and test/; type-only imports count like any other.
//   - no import cycles, anywhere;
//   - the layers of src/, bottom to top, each importing only from the layers below it (and from
//     its own folder);
//   - src/ never imports test/ or bench/.

/** src/ from the bottom up; a layer may import only from the layers before it in this list. */
const LAYERS = [
  { name: 'util', paths: ['src/util/', 'src/errors\\.ts$', 'src/config\\.ts$'] },
  { name: 'store', paths: ['src/store/'] },
  { name: 'chunks', paths: ['src/chunks/'] },
  { name: 'format', paths: ['src/format/'] },
  { name: 'session', paths: ['src/session/'] },
  { name: 'volume', paths: ['src/volume/'] },
  { name: 'fuse', paths: ['src/fuse/'] },
  { name: 'run', paths: ['src/run/'] },
  { name: 'plugin', paths: ['src/plugin/'] },
  { name: 'cli', paths: ['src/cli/'] },
  { name: 'library root', paths: ['src/index\\.ts$'] },
];

const anyOf = (paths) => `^(${paths.join('|')})`;

const layerRules = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer.name.replace(/ /g, '-')}`,
  comment: `${layer.name} (${layer.paths.join(', ')}) imports only from the layers below it: ${
    LAYERS.slice(0, i)
      .map((l) => l.name)
      .join(', ') || 'none'
  }.`,
  severity: 'error',
  from: { path: anyOf(layer.paths) },
  to: { path: anyOf(LAYERS.slice(i + 1).flatMap((l) => l.paths)) },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      comment: 'Files never import each other in a loop, directly or through others.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'src-not-to-tests',
      comment: 'The library never imports its tests or benchmarks.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
