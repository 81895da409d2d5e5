// Types for the jest-dom matchers registered in vitest-setup.ts.
import '@testing-library/jest-dom/vitest';
