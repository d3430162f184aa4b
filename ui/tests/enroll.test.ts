import { describe, expect, it } from 'vitest';
import { gateUrlProblem } from '../src/lib/enroll';

describe('gateUrlProblem', () => {
  it('accepts https anywhere and http only on this computer', () => {
    for (const ok of [
      '',
      'https://gate.example.bank',
      ' https://gate.example.bank:8443/countersign ',
      'http://127.0.0.1:7400',
      'http://localhost:7400',
      'http://[::1]:7400',
    ]) {
      expect(gateUrlProblem(ok), ok).toBeNull();
    }
  });

  it('says what is wrong with the rest', () => {
    expect(gateUrlProblem('http://gate.example.bank')).toMatch(/Use https:\/\//);
    expect(gateUrlProblem('http://10.0.0.5:7400')).toMatch(/only for a gate on this computer/);
    expect(gateUrlProblem('http://localhost.example.bank')).toMatch(/only for a gate on this computer/);
    expect(gateUrlProblem('ftp://gate.example.bank')).toMatch(/starts with https/);
    expect(gateUrlProblem('gate.example.bank')).toMatch(/full address/);
  });
});
