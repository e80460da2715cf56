import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { refresh } from './api/session';
import { App } from './app/App';
import './styles.css';

// A reload keeps the session: the refresh cookie gets a new access token.
void refresh();

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
