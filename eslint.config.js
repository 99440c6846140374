// ESLint (flat config): the recommended JavaScript and typescript-eslint rules (syntax only, no
// type information: tsc checks types), a few of them tuned to the code's conventions, and a limit
// of 450 lines per file. Layering and import cycles are dependency-cruiser's
// (.dependency-cruiser.cjs); formatting is Prettier's (.prettierrc.json). `npm run lint` runs all three.
import { readFileSync } from 'node:fs';
import { URL } from 'node:url';
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

const MAX_LINES = 450;

/** Files allowed over the limit for now (max-lines-allow.txt, one path a line, # comments). */
const allowedLong = readFileSync(new URL('./max-lines-allow.txt', import.meta.url), 'utf8')
  .split('\n')
  .map((line) => line.replace(/#.*/, '').trim())
  .filter(Boolean);

const maxLines = { max: MAX_LINES, skipBlankLines: false, skipComments: false };

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', 'native/build/', 'bench/results/', '.cairn-test/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      'max-lines': ['error', maxLines],
      // `_`-prefixed names are the code's way of saying "unused on purpose" (a callback's leading
      // arguments, a field dropped by a rest destructuring); anything else unused is an error.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // `(...args: any[]) => void` is how TypeScript spells "any callback" (unknown[] parameters
      // do not accept narrower callbacks): the FUSE operation tables need it. Other `any` is an error.
      '@typescript-eslint/no-explicit-any': ['error', { ignoreRestArgs: true }],
    },
  },
  {
    // CommonJS config files (.dependency-cruiser.cjs).
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    // Tests reach into internals and build malformed values on purpose (`as any`).
    files: ['test/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  ...(allowedLong.length ? [{ files: allowedLong, rules: { 'max-lines': ['warn', maxLines] } }] : []),
);
